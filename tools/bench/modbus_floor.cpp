// The floor under firegated's Modbus TCP polling: what asking N devices, each on a connection of its
// own, costs with nothing done with the answers. One thread, non-blocking sockets and epoll, no
// library: each device is asked for COUNT registers with function FC once an interval, the devices
// spread evenly over it (as firegated spreads its first polls), one send() a request and one recv()
// an answer (more only when an answer arrives in pieces). An answer is checked (transaction id,
// function, byte count) and dropped. Its CPU time over the window is the part of a poll's cost that
// the kernel and one system call each way take on this machine, which firegated's own code cannot
// remove. tools/bench/modbus_fleet.py --floor runs it against the same simulator as firegated.
//
// TICK_MS 0: the thread sleeps in epoll_wait until the next request is due or an answer comes (a
// wake-up for each). TICK_MS > 0: it sleeps TICK_MS at a time, then takes every answer that came
// and sends every request due (one wake-up for all of them: the fewest the machine allows, at up to
// TICK_MS of delay).
//
// Usage: modbus_floor PORTS_FILE FC COUNT INTERVAL_MS WARMUP_S SECONDS TICK_MS
// Prints one JSON object: polls asked and answered in the window, CPU (user, system) a poll, RSS.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

struct device {
  int fd{-1};
  std::uint16_t tid{0};
  bool waiting{false};
  std::size_t have{0};
  std::array<std::uint8_t, 260> buffer{};
};

double seconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: modbus_floor PORTS_FILE FC COUNT INTERVAL_MS WARMUP_S SECONDS TICK_MS\n");
    return 2;
  }
  std::vector<int> ports;
  {
    std::ifstream in(argv[1]);
    for (int p = 0; in >> p;) ports.push_back(p);
  }
  const auto fc = static_cast<std::uint8_t>(std::atoi(argv[2]));
  const auto count = static_cast<std::uint16_t>(std::atoi(argv[3]));
  const auto interval = std::chrono::milliseconds(std::atol(argv[4]));
  const auto warmup = std::chrono::seconds(std::atol(argv[5]));
  const auto window = std::chrono::seconds(std::atol(argv[6]));
  const auto tick = std::chrono::milliseconds(std::atol(argv[7]));
  if (ports.empty() || count == 0 || count > 125) {
    std::fprintf(stderr, "modbus_floor: no ports in %s, or COUNT not 1-125\n", argv[1]);
    return 2;
  }
  const int ep = epoll_create1(0);
  std::vector<device> devices(ports.size());
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(ports[i]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("modbus_floor: connect");
      return 1;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as firegated's transport sets it
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    devices[i].fd = fd;
  }
  // A request: MBAP header (transaction, protocol 0, length 6, unit 1), function, address 0, count.
  std::array<std::uint8_t, 12> request{0,
                                       0,
                                       0,
                                       0,
                                       0,
                                       6,
                                       1,
                                       fc,
                                       0,
                                       0,
                                       static_cast<std::uint8_t>(count >> 8),
                                       static_cast<std::uint8_t>(count & 0xff)};
  const std::size_t answer_size = 9 + 2 * std::size_t{count};
  const auto step = interval / static_cast<long>(devices.size());
  const auto begin = steady::now();
  const auto measure_from = begin + warmup, end = measure_from + window;
  auto next_due = begin;
  std::size_t next = 0;
  long asked = 0, answered = 0, bad = 0, overrun = 0;
  long asked_at_start = 0, answered_at_start = 0;
  rusage usage_at_start{};
  bool measuring = false;
  std::array<epoll_event, 128> events{};
  for (auto now = steady::now(); now < end; now = steady::now()) {
    if (!measuring && now >= measure_from) {
      measuring = true;
      getrusage(RUSAGE_SELF, &usage_at_start);
      asked_at_start = asked;
      answered_at_start = answered;
    }
    while (next_due <= now) {
      auto& d = devices[next];
      if (d.waiting) {
        ++overrun;  // its last answer has not come: not asked again (firegated waits too)
      } else {
        ++d.tid;
        request[0] = static_cast<std::uint8_t>(d.tid >> 8);
        request[1] = static_cast<std::uint8_t>(d.tid & 0xff);
        if (send(d.fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size())) {
          d.waiting = true;
          d.have = 0;
          ++asked;
        }
      }
      next = (next + 1) % devices.size();
      next_due += step;
    }
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(next_due - steady::now()).count();
    if (tick.count() > 0) {
      usleep(static_cast<useconds_t>(std::chrono::microseconds(tick).count()));
      wait_ms = 0;
    }
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()),
                             wait_ms > 0 ? static_cast<int>(wait_ms) : 0);
    for (int k = 0; k < n; ++k) {
      auto& d = devices[events[static_cast<std::size_t>(k)].data.u64];
      const auto got = recv(d.fd, d.buffer.data() + d.have, d.buffer.size() - d.have, 0);
      if (got <= 0) {
        std::fprintf(stderr, "modbus_floor: a device closed its connection\n");
        return 1;
      }
      d.have += static_cast<std::size_t>(got);
      if (d.have < answer_size) continue;
      const bool good = d.buffer[0] == (d.tid >> 8) && d.buffer[1] == (d.tid & 0xff) && d.buffer[7] == fc &&
                        d.buffer[8] == 2 * count;
      good ? ++answered : ++bad;
      d.waiting = false;
      d.have = 0;
    }
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double polls = static_cast<double>(answered - answered_at_start);
  const double user = seconds(usage.ru_utime) - seconds(usage_at_start.ru_utime);
  const double system = seconds(usage.ru_stime) - seconds(usage_at_start.ru_stime);
  std::printf(
      "{\"devices\": %zu, \"asked\": %ld, \"answered\": %.0f, \"bad\": %ld, \"overrun\": %ld, "
      "\"cpu_us_per_poll\": %.1f, \"kernel_us_per_poll\": %.1f, \"rss_mib\": %.1f}\n",
      devices.size(), asked - asked_at_start, polls, bad, overrun,
      polls > 0 ? 1e6 * (user + system) / polls : 0.0, polls > 0 ? 1e6 * system / polls : 0.0,
      static_cast<double>(rss_kib()) / 1024.0);
  return bad == 0 && polls > 0 ? 0 : 1;
}
