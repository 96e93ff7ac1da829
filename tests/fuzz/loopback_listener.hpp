#pragma once
// One listening TCP socket on 127.0.0.1 for a whole fuzz run, shared by the socket targets (a fresh
// port per input would leave the kernel's port range full of TIME_WAIT): a target accepts on it, or
// on a dup of it, for each input, and closes what an input's client left unaccepted.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

namespace firegate::fuzz {

struct loopback_listener {
  int fd{-1};
  std::uint16_t port{0};
  explicit loopback_listener(bool nonblocking) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      std::abort();
    port = ntohs(a.sin_port);
  }
  /// Connections a previous input's client made that nobody took: closed unread.
  void drain() const {
    for (;;) {
      const int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) break;
      ::close(c);
    }
  }
};

}  // namespace firegate::fuzz
