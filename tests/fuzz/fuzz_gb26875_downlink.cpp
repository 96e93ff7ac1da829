// libFuzzer target: what a GB/T 26875.3 monitoring centre sends to the uplink (daemon/uplink/
// gb26875_uplink.cpp and gb26875_downlink.cpp): confirms and denies of its frames, reads (61-68, 81,
// 84-88), control commands (clock 90, inspection 91, initialise 89), the centre's own data, and
// frames that fail verification. The real gb26875_uplink, on its own io_context, connects to a
// "centre" in the fuzz process over loopback TCP (a store in memory behind it, the outbox empty);
// the centre plays the input: raw bytes and valid frames, written in chunk sizes the input chooses,
// confirms and denies of the serial the uplink last sent, the duty person's answer to an inspection.
// Checked:
//  - no crash, no hang, nothing left running once the uplink is stopped;
//  - every byte the uplink sends parses with the codec (daemon/gb26875/frame.hpp) into whole frames
//    from its UITD address to the centre's, their application data decodes (the uplink's own
//    types), and it sends nothing else;
//  - each centre frame that needs an answer (send data, a read, a control command, as the codec's
//    reader finds them in what the centre sent) gets exactly one, in order, echoing its serial:
//    confirm for data, response or deny for a read, confirm or deny for a control command; what
//    fails verification may get a deny (which garbage counts as a bad frame depends on how the
//    bytes were cut into reads, and denies are rate-limited), and the uplink sends no other reply.
//    Where garbage spelled out a valid frame overlapping another, the stream is ambiguous and only
//    the form of the replies is checked;
//  - a clock synchronisation within clock_max_step_s is confirmed, one beyond it denied.
//
// Input: [k] [k chunk sizes] then the centre's operations (see `play` below). FUZZ_VERBOSE=1 prints
// what the uplink sent and how long the exchange took.

#include "fuzz_input.hpp"
#include "gb26875/app_data.hpp"
#include "gb26875/frame.hpp"
#include "gb26875_ambiguity.hpp"
#include "loopback_listener.hpp"
#include "store/store.hpp"
#include "store/store_worker.hpp"
#include "uplink/gb26875/gb26875_uplink.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
namespace gb = firegate::gb26875;

namespace {

constexpr std::uint64_t uitd_number = 0x0000112233445566;
constexpr std::uint64_t centre_number = 0x0000AABBCCDDEEFF;
constexpr auto max_step = 300s;

gb::address address_of(std::uint64_t n) {
  gb::address a{};
  for (auto& b : a) {
    b = static_cast<std::uint8_t>(n & 0xFF);
    n >>= 8;
  }
  return a;
}

/// One listening socket for the whole run (see fuzz_modbus_tcp_stream): the uplink connects to it.
struct listener : firegate::fuzz::loopback_listener {
  listener() : loopback_listener(true) {}
};

struct shared_parts {
  listener centre;
  firegate::store_worker worker{std::make_unique<firegate::store>(":memory:")};
};

shared_parts& shared() {
  static shared_parts* parts = [] {
    spdlog::set_level(spdlog::level::off);
    return new shared_parts;  // lives for the run (the worker's thread with it)
  }();
  return *parts;
}

/// Waits until every job posted to the store's thread before it has run (their answers are then
/// posted to the loop).
void drain_worker() {
  std::promise<void> done;
  shared().worker.post([&](firegate::store&) { done.set_value(); });
  done.get_future().wait();
}

using cursor = firegate::fuzz::cursor;

/// What the centre expects back for one of its frames (or bad frames).
struct expected_reply {
  std::uint16_t serial{0};
  std::vector<std::uint8_t> allowed;  ///< commands that may answer it
  std::optional<std::uint8_t> only;   ///< set when the test knows which one (clock steps)
  bool optional{false};               ///< a deny of garbage, which may be left out
};

struct centre_state {
  cursor script;
  std::vector<std::size_t> chunks;
  std::size_t next_chunk{0};
  std::vector<std::uint8_t> sent;                 ///< every byte the centre wrote
  std::vector<gb::frame> received;                ///< every frame the uplink sent
  std::vector<gb::frame> replies;                 ///< those answering the centre (confirm, deny, response)
  std::optional<std::uint16_t> last_data_serial;  ///< of the uplink's last send-data frame
  std::map<std::size_t, std::uint8_t> clock_verdicts;  ///< answer index (replies_due) → confirm or deny
  bool reader_done{false};
  asio::steady_timer* waiting{nullptr};  ///< the centre's wait, woken by each frame and by the close
  void wake() {
    if (waiting != nullptr) waiting->cancel();
  }
  firegate::gb26875_uplink* uplink{nullptr};
};

/// The replies the centre's bytes call for, by the codec's own reader over all of them.
std::vector<expected_reply> replies_due(const centre_state& c) {
  gb::frame_reader reader;
  reader.feed(c.sent);
  std::vector<expected_reply> out;
  while (auto r = reader.next()) {
    if (r->fault) {
      out.push_back({r->fault->serial, {gb::command::deny}, std::nullopt, true});
      continue;
    }
    const auto& f = *r->frame;
    switch (f.command) {
      case gb::command::send_data:
        out.push_back({f.serial, {gb::command::confirm}, std::nullopt});
        break;
      case gb::command::request:
        out.push_back({f.serial, {gb::command::response, gb::command::deny}, std::nullopt});
        break;
      case gb::command::control:
        out.push_back({f.serial, {gb::command::confirm, gb::command::deny}, std::nullopt});
        break;
      default:
        break;  // confirms, denies, responses and user-defined commands are not answered
    }
  }
  return out;
}

void check_frame(const gb::frame& f) {
  if (f.source != address_of(uitd_number) || f.destination != address_of(centre_number)) std::abort();
  if (f.version_main != 1 || f.version_user != 1) std::abort();
  if (f.command == gb::command::send_data || f.command == gb::command::response) {
    if (f.data.empty()) {
      if (f.command == gb::command::response) std::abort();
      return;  // a heartbeat
    }
    std::string error;
    const auto d = gb::decode_app_data(f.data, error);
    if (!d) std::abort();  // the uplink sent application data its own codec cannot read
    const auto* spec = gb::find_type(d->type);
    if (spec == nullptr || !spec->uplink) std::abort();
  } else if (f.command == gb::command::confirm || f.command == gb::command::deny) {
    if (!f.data.empty()) std::abort();
  } else {
    std::abort();  // the UITD sends data, responses, confirms and denies only
  }
}

asio::awaitable<void> read_uplink(tcp::socket& sock, centre_state& c) {
  gb::frame_reader reader;
  std::array<std::uint8_t, 2048> buf{};
  for (;;) {
    boost::system::error_code ec;
    const auto n =
        co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    reader.feed(std::span(buf.data(), n));
    while (auto r = reader.next()) {
      if (!r->frame) std::abort();  // a frame the codec rejects
      const auto& f = *r->frame;
      check_frame(f);
      c.received.push_back(f);
      if (f.command == gb::command::send_data) {
        c.last_data_serial = f.serial;
      } else {
        c.replies.push_back(f);
      }
      c.wake();
    }
  }
  if (reader.buffered() != 0) std::abort();  // a frame cut short
  c.reader_done = true;
  c.wake();
}

/// Until `done` holds, woken by what the reader sees; over 2 s is a failure (the uplink is stuck).
template <class Done>
asio::awaitable<void> wait_for(centre_state& c, Done done) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  const auto limit = std::chrono::steady_clock::now() + 2s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > limit) std::abort();
    t.expires_at(limit);
    c.waiting = &t;
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    c.waiting = nullptr;
  }
}

/// Until the uplink has answered all the centre sent (bounded: a missing answer is a failure).
asio::awaitable<void> settle(centre_state& c) {
  const auto due = replies_due(c);
  const auto want = static_cast<std::size_t>(
      std::count_if(due.begin(), due.end(), [](const expected_reply& e) { return !e.optional; }));
  co_await wait_for(c, [&] { return c.replies.size() >= want || c.reader_done; });  // or it never came
  for (int i = 0; i < 4; ++i) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

gb::frame centre_frame(std::uint8_t command, std::uint16_t serial, std::vector<std::uint8_t> data) {
  gb::frame f;
  f.serial = serial;
  f.time = gb::local_time_label(std::chrono::system_clock::now());
  f.source = address_of(centre_number);
  f.destination = address_of(uitd_number);
  f.command = command;
  f.data = std::move(data);
  return f;
}

std::vector<std::uint8_t> time_bytes(const gb::time_label& t) {
  return {t.second, t.minute, t.hour, t.day, t.month, static_cast<std::uint8_t>(t.year - 2000)};
}

// The centre's operations, one byte each (low 3 bits the kind), then their arguments:
//   0 wait for the uplink's answers to everything sent so far
//   1 raw bytes: length, bytes
//   2 a frame with a valid checksum: command, serial (2), length, data
//   3 confirm the uplink's last send-data frame (serial + int8 delta)
//   4 deny it (the same)
//   5 a typed command: bits 3-7 choose the type (reads, 89, 90, 91, others), fields from the input;
//     90 carries the box's time plus int8 × 10 s
//   6 the duty person answers the inspection check (operator byte)
//   7 chunk size: the next writes go out in pieces of 1 + byte
asio::awaitable<void> play(tcp::socket& sock, centre_state& c) {
  const auto send = [&](std::vector<std::uint8_t> bytes) -> asio::awaitable<bool> {
    c.sent.insert(c.sent.end(), bytes.begin(), bytes.end());
    for (std::size_t at = 0; at < bytes.size();) {
      std::size_t n = bytes.size() - at;
      if (!c.chunks.empty()) n = std::min(n, c.chunks[c.next_chunk++ % c.chunks.size()]);
      boost::system::error_code ec;
      co_await asio::async_write(sock, asio::buffer(bytes.data() + at, n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
      at += n;
      co_await asio::post(sock.get_executor(), asio::use_awaitable);
    }
    co_return true;
  };
  static constexpr std::uint8_t typed[] = {61, 62, 63, 64, 65, 66, 67, 68,  81, 84, 85, 86, 88, 89, 90, 91,
                                           90, 90, 91, 1,  2,  28, 0,  255, 87, 92, 60, 69, 80, 82, 83, 21};
  // The heartbeat the uplink sends on connecting, so that confirms have a serial to name.
  co_await wait_for(c, [&] { return c.last_data_serial.has_value() || c.reader_done; });
  bool open = true;
  while (open && !c.script.done()) {
    const std::uint8_t op = c.script.next();
    switch (op & 7) {
      case 0:
        co_await settle(c);
        break;
      case 1:
        open = co_await send(c.script.take(c.script.next()));
        break;
      case 2: {
        const std::uint8_t command = c.script.next();
        const std::uint8_t low = c.script.next();
        const auto serial = static_cast<std::uint16_t>(low | c.script.next() << 8);
        open = co_await send(gb::encode(centre_frame(command, serial, c.script.take(c.script.next()))));
        break;
      }
      case 3:
      case 4: {
        const auto delta = static_cast<std::int8_t>(c.script.next());
        const auto serial = static_cast<std::uint16_t>(c.last_data_serial.value_or(0) + delta);
        open = co_await send(
            gb::encode(centre_frame((op & 7) == 3 ? gb::command::confirm : gb::command::deny, serial, {})));
        break;
      }
      case 5: {
        const std::uint8_t type = typed[op >> 3];
        const std::uint8_t low = c.script.next();
        const auto serial = static_cast<std::uint16_t>(low | c.script.next() << 8);
        std::vector<std::uint8_t> data{type, 1};
        std::optional<std::uint8_t> verdict;
        if (type == 90) {
          const auto step = std::chrono::seconds(10 * static_cast<std::int8_t>(c.script.next()));
          const auto t = gb::local_time_label(std::chrono::system_clock::now() + step);
          const auto bytes = time_bytes(t);
          data.insert(data.end(), bytes.begin(), bytes.end());
          // Two seconds of slack either side: the label has whole seconds and the clock moves on.
          if (std::chrono::abs(step) + 2s <= max_step) verdict = gb::command::confirm;
          if (std::chrono::abs(step) >= max_step + 2s) verdict = gb::command::deny;
        } else {
          const auto fields = c.script.take(c.script.next() % 16u);
          data.insert(data.end(), fields.begin(), fields.end());
        }
        const std::uint8_t command = (type >= 89 && type <= 91) != ((op & 0x80u) != 0 && (op & 0x40u) != 0)
                                         ? gb::command::control
                                         : gb::command::request;
        const auto bytes = gb::encode(centre_frame(command, serial, std::move(data)));
        if (verdict && command == gb::command::control) {
          // Its answer's place, when the codec reads it as a frame of its own after what went before.
          centre_state after;
          after.sent = c.sent;
          after.sent.insert(after.sent.end(), bytes.begin(), bytes.end());
          gb::frame_reader reader;
          reader.feed(after.sent);
          std::optional<gb::read_result> last;
          while (auto r = reader.next()) last = std::move(r);
          if (last && last->frame && gb::encode(*last->frame) == bytes && reader.buffered() == 0)
            c.clock_verdicts[replies_due(after).size() - 1] = *verdict;
        }
        open = co_await send(bytes);
        break;
      }
      case 6:
        (void)c.uplink->answer_inspection(c.script.next());
        break;
      case 7:
        c.chunks.assign(1, 1u + c.script.next());
        break;
    }
  }
  if (open) co_await settle(c);
  boost::system::error_code ec;
  sock.shutdown(tcp::socket::shutdown_send, ec);  // the centre goes: the uplink reads eof
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& parts = shared();
  if (size < 1) return 0;
  const std::size_t k = data[0] & 7u;
  if (size < 1 + k) return 0;
  parts.centre.drain();

  auto c = std::make_unique<centre_state>();
  for (std::size_t i = 0; i < k; ++i) c->chunks.push_back(1 + data[1 + i] % 32u);
  c->script.bytes = std::span(data + 1 + k, size - 1 - k);

  {
    asio::io_context io;
    tcp::acceptor acceptor(io);
    acceptor.assign(tcp::v4(), ::fcntl(parts.centre.fd, F_DUPFD_CLOEXEC, 0));

    firegate::config::gb26875_uplink_config cfg;
    cfg.host = "127.0.0.1";
    cfg.port = parts.centre.port;
    cfg.uitd_address = uitd_number;
    cfg.centre_address = centre_number;
    cfg.clock_max_step = max_step;
    // Timers far beyond an input's life: only what the centre sends drives the uplink.
    cfg.confirm_timeout = 60s;
    cfg.heartbeat = 60s;
    cfg.heartbeat_abnormal = 60s;
    auto uplink = std::make_shared<firegate::gb26875_uplink>(io.get_executor(), cfg, parts.worker, 0,
                                                             firegate::gb26875_mapper());
    c->uplink = uplink.get();
    // The application's answers to reads: something, nothing (deny), or data that cannot be encoded.
    uplink->on_query([](const gb::app_data& request, std::function<void(std::optional<gb::app_data>)> reply) {
      const auto t = gb::local_time_label(std::chrono::system_clock::now());
      switch (request.type % 3) {
        case 0:
          reply(gb::app_data{28, {{{t}, std::nullopt}}});
          break;
        case 1:
          reply(std::nullopt);
          break;
        default:
          reply(gb::app_data{200, {{{std::int64_t{1}}, t}}});  // no such type: the uplink must deny
          break;
      }
    });
    uplink->on_clock_refused([](std::string detail, double) {
      if (detail.empty()) std::abort();
    });

    bool finished = false;
    tcp::socket sock(io);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          sock = co_await acceptor.async_accept(asio::use_awaitable);
          boost::system::error_code nec;
          sock.set_option(tcp::no_delay(true), nec);  // small writes go at once (no 40 ms Nagle wait)
          asio::co_spawn(io, read_uplink(sock, *c), asio::detached);
          co_await play(sock, *c);
          // Until the uplink has seen the close and closed its side.
          co_await wait_for(*c, [&] { return c->reader_done; });
          finished = true;
        },
        [](std::exception_ptr e) {
          if (e) std::abort();
        });
    uplink->start();

    const auto started = std::chrono::steady_clock::now();
    const auto limit = started + 4s;
    while (!finished && std::chrono::steady_clock::now() < limit) io.run_one_for(10ms);
    if (!finished) std::abort();  // the exchange never ended

    // Stop: the uplink's reconnect timer and the store's answers must all end.
    uplink->stop();
    uplink.reset();
    boost::system::error_code ec;
    acceptor.close(ec);
    sock.close(ec);
    drain_worker();
    io.restart();
    const auto stopping = std::chrono::steady_clock::now();
    io.run_for(1s);
    if (!io.stopped()) std::abort();  // something still pending after stop()
    if (std::getenv("FUZZ_VERBOSE") != nullptr) {
      std::fprintf(stderr, "exchange %lld ms, stop %lld ms\n",
                   static_cast<long long>((stopping - started) / 1ms),
                   static_cast<long long>((std::chrono::steady_clock::now() - stopping) / 1ms));
    }
  }

  // Every frame needing an answer got one, in order, with its serial and a fitting command.
  const auto due = replies_due(*c);
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;  // to see what a seed does
  if (verbose) {
    for (const auto& f : c->received) {
      std::fprintf(stderr, "uplink sent %s serial=%u data=%zu\n", gb::command_name(f.command).c_str(),
                   f.serial, f.data.size());
    }
    std::fprintf(stderr, "answers due %zu, clock verdicts %zu\n", due.size(), c->clock_verdicts.size());
  }
  // Matched in order; a deny of garbage may be missing, and a deny may answer garbage the reader
  // here did not count as a bad frame (the uplink read it cut otherwise): every way is tried.
  // fits[i][j] says whether the answers due from i on match the replies from j on.
  if (firegate::fuzz::gb26875_ambiguous(c->sent)) return 0;
  const auto answers = [&](std::size_t i, const gb::frame& got) {
    if (got.serial != due[i].serial) return false;
    if (std::find(due[i].allowed.begin(), due[i].allowed.end(), got.command) == due[i].allowed.end())
      return false;
    const auto it = c->clock_verdicts.find(i);
    return it == c->clock_verdicts.end() || got.command == it->second;
  };
  // An extra deny answers garbage: its serial is the two bytes after some "@@" the centre sent.
  std::set<std::uint16_t> garbage_serials;
  for (std::size_t p = 0; p + 3 < c->sent.size(); ++p) {
    if (c->sent[p] == 0x40 && c->sent[p + 1] == 0x40)
      garbage_serials.insert(static_cast<std::uint16_t>(c->sent[p + 2] | (c->sent[p + 3] << 8)));
  }
  const auto extra_deny = [&](const gb::frame& f) {
    return f.command == gb::command::deny && garbage_serials.contains(f.serial);
  };
  const auto n = due.size();
  const auto m = c->replies.size();
  std::vector<std::vector<char>> fits(n + 1, std::vector<char>(m + 1, 0));
  fits[n][m] = 1;
  for (std::size_t j = m; j-- > 0;) {
    fits[n][j] = static_cast<char>(extra_deny(c->replies[j]) && fits[n][j + 1]);
  }
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m + 1; j-- > 0;) {
      fits[i][j] = static_cast<char>((j < m && answers(i, c->replies[j]) && fits[i + 1][j + 1]) ||
                                     (due[i].optional && fits[i + 1][j]) ||
                                     (j < m && extra_deny(c->replies[j]) && fits[i][j + 1]));
    }
  }
  if (!fits[0][0]) std::abort();
  return 0;
}
