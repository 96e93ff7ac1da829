// libFuzzer target: the control socket's transport (daemon/control/control_server.*), what
// firegatectl or any local script writes to firegated. A real control::server listens on a Unix
// socket in a temporary folder (the fuzz process is the daemon's own user, so the peer check lets it
// in); its handler answers as the application's do (echo the request, stream lines then the answer,
// answer later from a timer, hold a tail, throw, read an argument of the wrong type). A client
// writes what the input says in chunk sizes it chooses: JSON requests, junk, CR LF, lines at and
// over 64 KiB, requests while one is under way, other connections holding tails, a half close or an
// abrupt one. Checked:
//  - every line the server sends is one JSON object, whole (never cut at the end);
//  - each complete request line gets exactly one final answer (a line with "ok"), in turn, while
//    the connection stays open: waited for before the client goes on (a missing one is a failure);
//  - a line longer than max_request_bytes gets a bad_request with id null as the last line, and the
//    server closes the connection;
//  - the server closes on the client's end of stream; once the client is gone and the server
//    stopped, nothing is left on the loop and every session is freed (no crash, no leak, no hang).
//
// Found and fixed: session::done() on a session already closed (the client went while its answer
// was being made, which the application does not check) re-armed the idle timer, which then held the
// daemon's loop, and so a stop, for the idle timeout. The handler here calls done() as the
// application does; the seed abrupt_while_slow stages it.
//
// Input: [flags: bit 0 idle_timeout 0 s (sessions close after each answer; only the line checks
// hold)] [k] [k chunk sizes] then the client's operations (see `play` below).

#include "control/control_server.hpp"
#include "fuzz_input.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace control = firegate::control;

namespace {

/// The socket in a folder of its own for the run, removed at exit (never destroyed before that).
const std::string& socket_path() {
  static const std::string* const path = [] {
    spdlog::set_level(spdlog::level::off);
    std::string tmpl = (std::filesystem::temp_directory_path() / "fuzz_control.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    return new std::string(tmpl + "/control.sock");
  }();
  static const bool cleanup = std::atexit([] {
                                std::error_code ec;
                                std::filesystem::remove_all(std::filesystem::path(*path).parent_path(), ec);
                              }) == 0;
  (void)cleanup;
  return *path;
}

using cursor = firegate::fuzz::cursor;

/// One client connection and what it saw.
struct conn {
  explicit conn(asio::any_io_executor ex) : sock(ex) {}
  local::socket sock;
  std::string sent;     ///< bytes written (whole writes that succeeded)
  std::string pending;  ///< received, not yet a whole line
  std::vector<json> lines;
  std::size_t finals{0};  ///< lines with "ok": the end of an answer
  bool eof{false};
  bool closed_by_us{false};
  asio::steady_timer* waiting{nullptr};
  void wake() {
    if (waiting != nullptr) waiting->cancel();
  }
};

/// What the server should make of the bytes a client wrote: the complete request lines it reads
/// (non-empty once a trailing CR is dropped) before any line too long, and whether there is one.
struct expectation {
  std::size_t requests{0};
  bool too_long{false};
};

expectation expect(const std::string& sent) {
  expectation e;
  std::size_t start = 0;
  while (start < sent.size()) {
    const auto nl = sent.find('\n', start);
    const auto end = nl == std::string::npos ? sent.size() : nl;
    // The server's buffer holds max_request_bytes + 1: a line that fills it without its newline.
    if (end - start >= control::max_request_bytes + 1) {
      e.too_long = true;
      return e;
    }
    if (nl == std::string::npos) break;  // incomplete: never read as a request
    auto line = std::string_view(sent).substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) ++e.requests;
    start = nl + 1;
  }
  return e;
}

asio::awaitable<void> read_lines(std::shared_ptr<conn> c) {
  std::array<char, 8192> buf{};
  for (;;) {
    boost::system::error_code ec;
    const auto n =
        co_await c->sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    c->pending.append(buf.data(), n);
    for (auto nl = c->pending.find('\n'); nl != std::string::npos; nl = c->pending.find('\n')) {
      auto doc = json::parse(c->pending.substr(0, nl), nullptr, false);
      if (doc.is_discarded() || !doc.is_object()) std::abort();  // not one JSON object a line
      if (doc.contains("ok")) ++c->finals;
      c->lines.push_back(std::move(doc));
      c->pending.erase(0, nl + 1);
    }
    c->wake();
  }
  if (!c->pending.empty() && !c->closed_by_us) std::abort();  // a line cut short
  c->eof = true;
  c->wake();
}

template <class Done>
asio::awaitable<void> wait_for(conn& c, Done done) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  const auto limit = std::chrono::steady_clock::now() + 3s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > limit) std::abort();  // an answer or a close never came
    t.expires_at(limit);
    c.waiting = &t;
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    c.waiting = nullptr;
  }
}

struct client_state {
  cursor script;
  std::vector<std::size_t> chunks;
  std::size_t next_chunk{0};
  bool strict{true};   ///< sessions stay open between requests (not the idle 0 s mode)
  bool abrupt{false};  ///< the client closed at once (operation 4)
  std::vector<std::shared_ptr<conn>> extra;
};

/// Writes `bytes` in chunks; false once the server has closed.
asio::awaitable<bool> send(conn& c, client_state& s, std::string bytes, std::size_t scale = 1) {
  for (std::size_t at = 0; at < bytes.size();) {
    std::size_t n = bytes.size() - at;
    if (!s.chunks.empty()) n = std::min(n, s.chunks[s.next_chunk++ % s.chunks.size()] * scale);
    boost::system::error_code ec;
    co_await asio::async_write(c.sock, asio::buffer(bytes.data() + at, n),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return false;
    c.sent.append(bytes, at, n);
    at += n;
    co_await asio::post(c.sock.get_executor(), asio::use_awaitable);  // the server reads a piece
  }
  co_return true;
}

/// Until the server has answered every request written (strict mode), or closed.
asio::awaitable<void> settle(conn& c, const client_state& s) {
  const auto e = expect(c.sent);
  if (e.too_long || !s.strict) {
    if (e.too_long) co_await wait_for(c, [&] { return c.eof; });  // it must close
    co_return;
  }
  co_await wait_for(c, [&] { return c.finals >= e.requests || c.eof; });
  if (c.finals > e.requests) std::abort();  // more answers than requests
}

const char* const canned[] = {
    R"({"id":1,"command":"echo"})",
    R"({"id":"s","command":"stream","n":5})",
    R"({"id":[1,2],"command":"slow"})",
    R"({"id":{"a":null},"command":"tail"})",
    R"({"id":4,"command":"throw"})",
    R"({"id":5,"command":"bad","args":"ten"})",
    R"({"id":6,"command":"status","args":{}})",
    R"({"command":7})",
    R"([1,2,3])",
    R"({"id":9,"command":"stream","n":1000})",
    "{\"id\":\"\xff\xfe\",\"command\":\"echo\"}",
    R"({"id":11,"command":"echo","text":"\u00e9\ud83d\ude00"})",
};

// The client's operations, one byte each (low 3 bits the kind), then their arguments:
//   0 text: length, bytes
//   1 a long line: size (2 bytes, plus 65408 with bit 3), a request padded to it with bit 4 (else
//     'x' bytes), its newline with bit 5; written in chunks 1 KiB times the chunk size
//   2 wait until every request written has its answer
//   3 half close, then read to the end (the last operation)
//   4 close at once (the last operation)
//   5 chunk size: 1 + byte
//   6 open connections that each start a tail and stay (count: byte % 20)
//   7 a canned request (byte: which one; bit 3: CR LF; bit 4: no newline)
asio::awaitable<void> play(std::shared_ptr<conn> c, client_state& s) {
  while (!s.script.done()) {
    const std::uint8_t op = s.script.next();
    switch (op & 7) {
      case 0:
        if (!co_await send(*c, s, s.script.take_text(s.script.next()))) co_return;
        break;
      case 1: {
        const std::size_t high = s.script.next();
        std::size_t size = (high << 8 | s.script.next()) + ((op & 8) ? control::max_request_bytes - 128 : 0);
        std::string line;
        if (op & 16) {
          line = R"({"id":"long","command":"echo","pad":")";
          line.resize(std::max(size, line.size() + 2) - 2, 'p');
          line += "\"}";
        } else {
          line.assign(size, 'x');
        }
        if (op & 32) line += '\n';
        if (!co_await send(*c, s, std::move(line), 1024)) co_return;
        break;
      }
      case 2:
        co_await settle(*c, s);
        break;
      case 3:
        co_return;  // the caller ends the connection
      case 4:
        s.abrupt = true;
        co_return;
      case 5:
        s.chunks.assign(1, 1u + s.script.next());
        break;
      case 6: {
        const std::size_t n = s.script.next() % 20u;
        for (std::size_t i = 0; i < n; ++i) {
          auto e = std::make_shared<conn>(c->sock.get_executor());
          boost::system::error_code ec;
          co_await e->sock.async_connect(local::endpoint(socket_path()),
                                         asio::redirect_error(asio::use_awaitable, ec));
          if (ec) std::abort();
          asio::co_spawn(e->sock.get_executor(), read_lines(e), asio::detached);
          s.extra.push_back(e);
          const std::string tail = R"({"id":"t","command":"tail"})"
                                   "\n";
          co_await asio::async_write(e->sock, asio::buffer(tail),
                                     asio::redirect_error(asio::use_awaitable, ec));
        }
        break;
      }
      case 7: {
        const std::uint8_t pick = s.script.next();
        std::string line = canned[pick % std::size(canned)];
        if (!(op & 16)) line += (op & 8) ? "\r\n" : "\n";
        if (!co_await send(*c, s, std::move(line))) co_return;
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& path = socket_path();
  if (size < 2) return 0;
  const bool idle_zero = (data[0] & 1u) != 0;
  const std::size_t k = data[1] & 7u;
  if (size < 2 + k) return 0;
  client_state s;
  s.strict = !idle_zero;
  for (std::size_t i = 0; i < k; ++i) s.chunks.push_back(1 + data[2 + i] % 64u);
  s.script.bytes = std::span(data + 2 + k, size - 2 - k);

  static asio::io_context io;  // one loop for the run; each input leaves it with nothing to do
  io.restart();
  std::vector<std::weak_ptr<control::session>> sessions;
  std::size_t deferred = 0;  // handler work still to fire
  // The end of an answer made later: done() whether the client is there or not, as the application.
  const auto finish = [](const std::shared_ptr<control::session>& session) { session->done(); };
  {
    // The application's part, as app/control_api.cpp does it: answers now or later, through the session.
    control::server server(
        io.get_executor(), [&](const std::shared_ptr<control::session>& session, const json& request) {
          sessions.push_back(session);
          const auto id = request.contains("id") ? request["id"] : json(nullptr);
          const auto command = request["command"].get<std::string>();
          const auto later = [&](std::chrono::milliseconds after, std::function<void()> then) {
            ++deferred;
            auto t = std::make_shared<asio::steady_timer>(io, after);
            t->async_wait([t, then = std::move(then), &deferred](boost::system::error_code) {
              --deferred;
              then();
            });
          };
          if (command == "echo") {
            session->send(control::reply(id, request));
            session->done();
          } else if (command == "stream") {
            const auto n = request.value("n", json(3));
            const std::size_t lines =
                n.is_number_unsigned() ? std::min<std::uint64_t>(n.get<std::uint64_t>(), 2000) : 3;
            session->streaming();
            later(0ms, [session, id, lines, finish] {
              for (std::size_t i = 0; i < lines; ++i) session->send({{"id", id}, {"line", i}}, true);
              session->send(control::reply(id, {{"lines", lines}}));
              finish(session);
            });
          } else if (command == "slow") {
            later(1ms, [session, id, finish] {
              session->send(control::reply(id, "late"));
              finish(session);
            });
          } else if (command == "tail") {
            if (!session->open_stream()) {
              session->send(control::refuse(id, "busy", "too many tails"));
              session->done();
              return;
            }
            later(2ms, [session, id, finish] {
              session->send({{"id", id}, {"reading", 1.5}}, true);
              session->send(control::reply(id, "tail over"));
              finish(session);
            });
          } else if (command == "throw") {
            throw std::runtime_error("the store is gone");
          } else if (command == "bad") {
            (void)request.at("args").get<int>();  // a string: json::type_error, the client's mistake
            session->send(control::reply(id, nullptr));
            session->done();
          } else {
            session->send(control::refuse(id, "unknown_command", "no such command: " + command));
            session->done();
          }
        });
    if (!server.start(path, "", idle_zero ? 0s : 120s).empty()) std::abort();

    bool finished = false;
    auto main = std::make_shared<conn>(io.get_executor());
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await main->sock.async_connect(local::endpoint(path), asio::use_awaitable);
          asio::co_spawn(io, read_lines(main), asio::detached);
          co_await play(main, s);
          boost::system::error_code ec;
          if (s.abrupt) {
            main->closed_by_us = true;
            main->sock.close(ec);
          } else {
            co_await settle(*main, s);
            main->sock.shutdown(local::socket::shutdown_send, ec);  // the server must close in turn
            co_await wait_for(*main, [&] { return main->eof; });
          }
          finished = true;
        },
        [](std::exception_ptr e) {
          if (e) std::abort();
        });
    const auto limit = std::chrono::steady_clock::now() + 4s;
    while (!finished && std::chrono::steady_clock::now() < limit) io.run_one_for(10ms);
    if (!finished) std::abort();

    // The answers' shape on the main connection.
    const auto e = expect(main->sent);
    if (s.strict && !main->closed_by_us) {
      if (e.too_long) {
        if (main->lines.empty()) std::abort();
        const auto& last = main->lines.back();
        if (last.value("code", "") != "bad_request" || !last["id"].is_null()) std::abort();
        if (main->finals > e.requests + 1) std::abort();
      } else if (main->finals != e.requests) {
        std::abort();  // every request line, one final answer
      }
    }

    // The client goes; the server stops: everything it started must end.
    for (auto& x : s.extra) {
      x->closed_by_us = true;
      boost::system::error_code ec;
      x->sock.close(ec);
    }
    server.stop();
    io.restart();
    io.run_for(1s);
    if (!io.stopped()) std::abort();  // still pending after the server stopped and every client left
  }
  for (const auto& w : sessions) {
    if (!w.expired()) std::abort();  // a session outlives its server and its client
  }
  if (deferred != 0) std::abort();
  return 0;
}
