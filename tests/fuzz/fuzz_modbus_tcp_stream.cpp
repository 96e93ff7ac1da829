// libFuzzer target: the Modbus TCP transports (drivers/modbus/tcp_transport.*: MBAP or RTU framing,
// one request at a time; tcp_pipelined_transport.*: MBAP with answers paired by transaction id) on
// a real loopback socket. The fuzz process listens; each time the transport connects, a scripted
// device answers the requests it reads with what the input says (valid answers, answers with another
// transaction id or unit, raw junk, several answers at once, a close), written in chunk sizes the
// input chooses. The transport's own timeout (20 ms: short, so that an input stays short) ends a
// transaction that gets no answer; a device that has said all it has to say closes after 2 ms of
// silence unless the input tells it to stay silent. FUZZ_VERBOSE=1 prints each transaction's end.
// Checked:
//  - every transaction completes, and the whole input within a bound (no hang), and everything the
//    transports started has ended once they are closed (nothing left on the loop, no leak);
//  - a response PDU is returned only when the device sent exactly that PDU in a frame for that
//    request: MBAP header with the request's transaction id, unit and length, or an RTU frame with
//    the unit and a valid CRC; it is 1-253 bytes;
//  - otherwise a clear error: a non-zero code, and in the Modbus category only the transport failures
//    (timeout, connection_closed, malformed_frame, transaction_mismatch, crc_mismatch);
//  - tcp_transport closes the connection after any failure (the stream position is unknown).
//
// Found and fixed: tcp_pipelined_transport's detached read loop, when the transport was destroyed
// right after close() while a partial read had a completion queued, read through the destroyed socket
// (heap-use-after-free); the loops now hold the socket. Bit 3 of the mode byte destroys the transport
// at once after close(); without it the loop runs first, as modbus_bus does. The reproducer is
// tests/fuzz/corpus/modbus_tcp_stream/uaf-pipelined-destroy-at-once.
//
// Input: [mode: 0 MBAP, 1 RTU over TCP, 2 pipelined; bit 2: pipelined requests all at once; bit 3:
// destroy at once after close]
// [transactions 1-4] [unit] [k] [k chunk sizes] then the device's script: blocks of operations, one
// block per request read (see `op` below).

#include "fuzz_input.hpp"
#include "loopback_listener.hpp"
#include "modbus/codec/mbap.hpp"
#include "modbus/codec/pdu.hpp"
#include "modbus/codec/rtu.hpp"
#include "modbus/modbus_error.hpp"
#include "modbus/tcp_pipelined_transport.hpp"
#include "modbus/tcp_transport.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace firegate::modbus;
using namespace std::chrono_literals;

namespace {

constexpr auto transport_timeout = 20ms;
constexpr std::uint16_t registers_asked = 2;

/// One listening socket for the whole run (a fresh port per input would leave the kernel's port
/// range full of TIME_WAIT); each input's acceptor works on a dup of it.
struct listener : firegate::fuzz::loopback_listener {
  listener() : loopback_listener(false) {}
};

const listener& shared_listener() {
  static const listener l = [] {
    spdlog::set_level(spdlog::level::off);
    listener made;
    ::fcntl(made.fd, F_SETFL, ::fcntl(made.fd, F_GETFL) | O_NONBLOCK);
    return made;
  }();
  return l;
}

using cursor = firegate::fuzz::cursor;

enum class mode { mbap, rtu, pipelined };

/// A request as the device read it.
struct seen_request {
  std::uint16_t tid{0};
  std::uint8_t unit{0};
  std::vector<std::uint8_t> pdu;
};

struct device_state {
  mode framing{mode::mbap};
  cursor script;
  std::vector<std::size_t> chunks;
  std::size_t next_chunk{0};
  std::vector<std::vector<std::uint8_t>> written;  ///< per connection, every byte the device sent
  std::vector<seen_request> requests;              ///< every request read, all connections
  bool stopping{false};
};

// Script operations, one byte each (low 3 bits the kind), then their arguments:
//   0 end of the answer to this request: the next request is read, for 2 ms at most (then the
//     device closes the connection), or for as long as it takes when the byte is exactly 0x08
//   1 raw: length, bytes
//   2 the right answer (bits 3-7: to the request that many back), registers from the input
//   3 MBAP frame: transaction id delta (int8), unit xor, length, PDU; bit 3: a raw length field (2 bytes)
//   4 RTU frame: unit xor, length, PDU; bit 3: CRC spoiled
//   5 close the connection now
//   6 chunk size: the next writes go out in pieces of 1 + byte
//   7 an exception answer (code from the input)
asio::awaitable<void> serve(tcp::socket sock, device_state& d) {
  boost::system::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  const std::size_t conn = d.written.size();
  d.written.emplace_back();
  std::vector<seen_request> here;  // this connection's requests
  const auto send = [&](std::vector<std::uint8_t> bytes) -> asio::awaitable<bool> {
    d.written[conn].insert(d.written[conn].end(), bytes.begin(), bytes.end());
    for (std::size_t at = 0; at < bytes.size();) {
      std::size_t n = bytes.size() - at;
      if (!d.chunks.empty()) n = std::min(n, d.chunks[d.next_chunk++ % d.chunks.size()]);
      boost::system::error_code wec;
      co_await asio::async_write(sock, asio::buffer(bytes.data() + at, n),
                                 asio::redirect_error(asio::use_awaitable, wec));
      if (wec) co_return false;
      at += n;
      // Let the transport read what came so far before the rest arrives.
      co_await asio::post(sock.get_executor(), asio::use_awaitable);
      co_await asio::post(sock.get_executor(), asio::use_awaitable);
    }
    co_return true;
  };
  const auto answer_to = [&](const seen_request& r, std::vector<std::uint8_t> pdu) {
    return d.framing == mode::rtu ? encode_rtu_adu(r.unit, pdu) : encode_adu(r.tid, r.unit, pdu);
  };

  bool patient = true;  // the first request comes at once; later ones see below
  while (!d.script.done() && !d.stopping) {
    // Read one request. A device that said all it had to say and hears nothing within 2 ms closes
    // (a transport waiting for the rest of an answer would otherwise wait for its timeout on every
    // input); one told to stay silent waits, and the transport's timeout ends the transaction.
    asio::steady_timer idle(sock.get_executor());
    auto armed = std::make_shared<bool>(true);  // an expiry already queued when the read ends is void
    const struct disarm {
      std::shared_ptr<bool> flag;
      ~disarm() { *flag = false; }
    } disarmed{armed};  // however this iteration ends
    if (!patient) {
      idle.expires_after(2ms);
      idle.async_wait([&sock, armed](boost::system::error_code tec) {
        if (!tec && *armed) sock.cancel();
      });
    }
    seen_request r;
    if (d.framing == mode::rtu) {
      std::array<std::uint8_t, 8> adu{};  // every request here is a read: 8 bytes
      co_await asio::async_read(sock, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      r.unit = adu[0];
      r.pdu.assign(adu.begin() + 1, adu.end() - 2);
    } else {
      std::array<std::uint8_t, mbap_header_size> head{};
      co_await asio::async_read(sock, asio::buffer(head), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      const auto h = decode_mbap(head);
      if (!h) std::abort();  // the transport sent a bad header
      r.tid = h->transaction_id;
      r.unit = h->unit_id;
      r.pdu.resize(h->pdu_size());
      co_await asio::async_read(sock, asio::buffer(r.pdu), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    *armed = false;
    idle.cancel();
    patient = false;
    here.push_back(r);
    d.requests.push_back(r);
    // Answer as the script says.
    bool open = true;
    while (open && !d.script.done()) {
      const std::uint8_t op = d.script.next();
      if ((op & 7) == 0) {
        patient = op == 0x08;  // stay silent: the transport's timeout ends the transaction
        break;
      }
      switch (op & 7) {
        case 1:
          open = co_await send(d.script.take(d.script.next()));
          break;
        case 2: {
          const auto& to =
              here[here.size() - 1 - std::min(static_cast<std::size_t>(op >> 3), here.size() - 1)];
          std::vector<std::uint8_t> pdu{to.pdu.empty() ? std::uint8_t{3} : to.pdu[0],
                                        static_cast<std::uint8_t>(2 * registers_asked)};
          auto values = d.script.take(2 * registers_asked);
          values.resize(2 * registers_asked);
          pdu.insert(pdu.end(), values.begin(), values.end());
          open = co_await send(answer_to(to, pdu));
          break;
        }
        case 3: {
          const auto delta = static_cast<std::int8_t>(d.script.next());
          const auto unit = static_cast<std::uint8_t>(r.unit ^ d.script.next());
          const std::size_t length = d.script.next();
          std::optional<std::uint16_t> raw_length;
          if (op & 8) {
            const std::uint8_t high = d.script.next();
            raw_length = static_cast<std::uint16_t>(high << 8 | d.script.next());
          }
          const auto pdu = d.script.take(length);
          const auto tid = static_cast<std::uint16_t>(r.tid + delta);
          const auto field = raw_length.value_or(static_cast<std::uint16_t>(pdu.size() + 1));
          std::vector<std::uint8_t> frame{
              static_cast<std::uint8_t>(tid >> 8),   static_cast<std::uint8_t>(tid),   0,   0,
              static_cast<std::uint8_t>(field >> 8), static_cast<std::uint8_t>(field), unit};
          frame.insert(frame.end(), pdu.begin(), pdu.end());
          open = co_await send(frame);
          break;
        }
        case 4: {
          const auto unit = static_cast<std::uint8_t>(r.unit ^ d.script.next());
          auto frame = encode_rtu_adu(unit, d.script.take(d.script.next()));
          if (op & 8) frame.back() ^= 0x01;
          open = co_await send(frame);
          break;
        }
        case 5:
          open = false;
          break;
        case 6:
          d.chunks.assign(1, 1u + d.script.next());
          break;
        case 7:
          open = co_await send(answer_to(
              r, {static_cast<std::uint8_t>((r.pdu.empty() ? 3 : r.pdu[0]) | 0x80), d.script.next()}));
          break;
      }
    }
    if (!open) break;
  }
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, device_state& d) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || d.stopping) co_return;
    asio::co_spawn(acceptor.get_executor(), serve(std::move(sock), d), asio::detached);
  }
}

/// What a transaction got, for the checks.
struct outcome {
  std::size_t index{0};
  result<std::vector<std::uint8_t>> r{std::error_code{}};
  bool open_after{false};
  bool done{false};
};

std::vector<std::uint8_t> read_pdu(std::size_t i) {
  std::vector<std::uint8_t> pdu;
  // A distinct address per transaction: the device's log tells them apart.
  encode_request(
      read_request{function_code::read_holding_registers, static_cast<std::uint16_t>(i), registers_asked},
      pdu);
  return pdu;
}

bool contains(const std::vector<std::uint8_t>& hay, const std::vector<std::uint8_t>& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

void check(const outcome& o, const device_state& d, mode framing, std::uint8_t unit) {
  if (!o.done) std::abort();  // never completed
  if (!o.r) {
    const auto e = o.r.error();
    if (!e) std::abort();
    if (e.category() == modbus_category()) {
      switch (static_cast<modbus_errc>(e.value())) {
        case modbus_errc::timeout:
        case modbus_errc::connection_closed:
        case modbus_errc::malformed_frame:
        case modbus_errc::transaction_mismatch:
        case modbus_errc::crc_mismatch:
          break;
        default:
          std::abort();
      }
    }
    if (framing != mode::pipelined && o.open_after) std::abort();  // a failure closes the connection
    return;
  }
  const auto& pdu = *o.r;
  if (pdu.empty() || pdu.size() > max_pdu_size) std::abort();
  if (framing == mode::rtu) {
    const auto frame = encode_rtu_adu(unit, pdu);
    for (const auto& w : d.written) {
      if (contains(w, frame)) return;
    }
    std::abort();  // a PDU the device never sent in a valid frame for this unit
  }
  // The transaction ids this request went out with (as the device read it), or the one the
  // transport gives it (1, 2, ... in call order) when the device never read it.
  std::vector<std::uint16_t> tids{static_cast<std::uint16_t>(o.index + 1)};
  const auto asked = read_pdu(o.index);
  for (const auto& r : d.requests) {
    if (r.pdu == asked) tids.push_back(r.tid);
  }
  for (const auto tid : tids) {
    const auto frame = encode_adu(tid, unit, pdu);
    for (const auto& w : d.written) {
      if (contains(w, frame)) return;
    }
  }
  std::abort();  // not an answer the device sent for this transaction
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& shared = shared_listener();
  if (size < 4) return 0;
  const auto framing = static_cast<mode>((data[0] & 3u) % 3u);
  const bool at_once = framing == mode::pipelined && (data[0] & 4u) != 0;
  const bool destroy_at_once = (data[0] & 8u) != 0;
  const std::size_t count = 1 + data[1] % 4u;
  const std::uint8_t unit = data[2];
  const std::size_t k = data[3] & 7u;
  if (size < 4 + k) return 0;

  shared.drain();
  auto state = std::make_unique<device_state>();
  state->framing = framing;
  for (std::size_t i = 0; i < k; ++i) state->chunks.push_back(1 + data[4 + i] % 16u);
  state->script.bytes = std::span(data + 4 + k, size - 4 - k);

  std::vector<outcome> outcomes(count);
  const auto started = std::chrono::steady_clock::now();
  {
    // One loop for the run (its resolver thread with it); each input leaves it with nothing to do.
    static asio::io_context io;
    io.restart();
    tcp::acceptor acceptor(io);
    acceptor.assign(tcp::v4(), ::fcntl(shared.fd, F_DUPFD_CLOEXEC, 0));
    std::unique_ptr<transport> t;
    if (framing == mode::pipelined) {
      t = std::make_unique<tcp_pipelined_transport>(io.get_executor(), "127.0.0.1", shared.port,
                                                    transport_timeout);
    } else {
      t = std::make_unique<tcp_transport>(io.get_executor(), "127.0.0.1", shared.port, transport_timeout,
                                          framing == mode::rtu ? tcp_framing::rtu : tcp_framing::mbap);
    }
    asio::co_spawn(io, accept_loop(acceptor, *state), asio::detached);

    bool client_done = false;
    const auto one = [&](std::size_t i) -> asio::awaitable<void> {
      outcomes[i].index = i;
      const auto pdu = read_pdu(i);
      outcomes[i].r = co_await t->transact(unit, pdu);
      outcomes[i].open_after = t->is_open();
      outcomes[i].done = true;
    };
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          if (at_once) {
            if (auto ec = co_await t->open()) {
              for (auto& o : outcomes) o = {0, ec, false, true};
            } else {
              // All outstanding together; each ends on its own.
              for (std::size_t i = 0; i < count; ++i) asio::co_spawn(io, one(i), asio::detached);
              asio::steady_timer poll(io);
              while (
                  !std::all_of(outcomes.begin(), outcomes.end(), [](const outcome& o) { return o.done; })) {
                poll.expires_after(1ms);
                co_await poll.async_wait(asio::use_awaitable);
              }
            }
          } else {
            for (std::size_t i = 0; i < count; ++i) {
              if (!t->is_open()) {
                if (auto ec = co_await t->open()) {
                  outcomes[i] = {i, ec, false, true};
                  continue;
                }
              }
              co_await one(i);
            }
          }
          client_done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::abort();
        });

    // Liveness: each transaction is bounded by the transport's timeout; the whole input by this.
    const auto limit = std::chrono::steady_clock::now() + 3s;
    while (!client_done && std::chrono::steady_clock::now() < limit) io.run_one_for(10ms);
    if (!client_done) std::abort();  // a transaction that never completed

    // Stop everything; what the transports started must end. Closed, then destroyed at once or
    // after the loop ran what close() completed (as modbus_bus does).
    state->stopping = true;
    t->close();
    if (!destroy_at_once) {
      io.restart();
      io.poll();
    }
    t.reset();
    boost::system::error_code ec;
    acceptor.close(ec);
    io.restart();
    io.run_for(1s);
    if (!io.stopped()) std::abort();  // something still pending after close
  }
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;  // to see what a seed does
  if (verbose) {
    std::fprintf(stderr, "input: %lld ms\n",
                 static_cast<long long>((std::chrono::steady_clock::now() - started) / 1ms));
  }
  for (const auto& o : outcomes) {
    if (verbose) {
      std::fprintf(stderr, "transaction %zu: %s (%zu bytes) open=%d\n", o.index,
                   o.r ? "pdu" : o.r.error().message().c_str(), o.r ? o.r->size() : 0, o.open_after);
    }
    check(o, *state, framing, unit);
  }
  return 0;
}
