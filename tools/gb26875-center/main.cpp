// firegate-gb26875-center: a reference GB/T 26875.3 monitoring centre (docs/gb26875.md, "Reference
// centre"). Accepts UITD connections over TCP, confirms each send-data frame, and prints what it
// receives field by field (or, with --json, one JSON object a line, with the receipt time, for
// tests and benchmarks). Frames that fail verification are printed with their fault and denied.
// Commands on standard input, sent to every connected UITD:
//   query TYPE [VALUE...]   a read (61-68 with system type, system address[, component address];
//                           81, 85, 86, 88 with no values; 84 with count); more values name more
//                           systems or components in one read (61-63, 66, 67)
//   clock [+SECONDS]        clock synchronisation (90): the centre's time, shifted by SECONDS
//   inspect                 an inspection check (91)
//   init                    initialise the UITD (89)
//   silent N                confirm none of the next N send-data frames (to test timeouts)
//   deny N                  deny the next N send-data frames
//   garbage                 bytes that are no frame, then a frame with a wrong checksum
//   noisy HOW TYPE [VALUE...]  a read as `query` sends it, in a noisy stream: HOW is stray (one '@'
//                           before it), cut (a clock frame cut short before it), pause (a clock
//                           frame cut short, the read 2.5 s later), flood (5,000 '@' before it),
//                           bytes (a byte a write, 5 ms apart) or mixed (garbage with markers and a
//                           false header around it, the frame in two writes 50 ms apart)
//   close                   close every connection
// Single-threaded Asio; uses firegate's codec (daemon/gb26875), no other part of firegate.

#include "gb26875/app_data.hpp"
#include "gb26875/frame.hpp"
#include "gb26875/gb18030.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace gb = firegate::gb26875;
using json = nlohmann::json;

struct settings {
  std::uint64_t address{0};
  bool json_out{false};
};

/// What the operator asked of the next send-data frames.
struct behaviour {
  unsigned silent{0};
  unsigned deny{0};
};

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t address_number(const gb::address& a) {
  std::uint64_t n = 0;
  for (std::size_t i = a.size(); i-- > 0;) n = (n << 8) | a[i];
  return n;
}

json value_json(const gb::field_value& v) {
  if (const auto* n = std::get_if<std::int64_t>(&v)) return *n;
  if (const auto* s = std::get_if<std::string>(&v)) return gb::from_gb18030(*s);
  return std::get<gb::time_label>(v).text();
}

json data_json(const gb::app_data& d) {
  json objects = json::array();
  const auto* spec = gb::find_type(d.type);
  for (const auto& o : d.objects) {
    json obj = json::object();
    for (std::size_t i = 0; i < o.values.size() && spec != nullptr && i < spec->fields.size(); ++i) {
      obj[std::string(spec->fields[i].name)] = value_json(o.values[i]);
    }
    if (o.time) obj["time"] = o.time->text();
    objects.push_back(std::move(obj));
  }
  return {{"type", d.type},
          {"name", spec != nullptr ? std::string(spec->name) : std::string()},
          {"objects", objects}};
}

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(tcp::socket socket, const settings& s, behaviour& b, std::uint64_t number)
      : socket_(std::move(socket)), settings_(s), behaviour_(b), number_(number) {}

  void start() {
    boost::system::error_code ec;
    peer_ = fmt::format("{}", socket_.remote_endpoint(ec).address().to_string());
    say({{"event", "connected"}, {"connection", number_}, {"peer", peer_}},
        fmt::format("[{}] UITD connected from {}", number_, peer_));
    read();
  }

  /// Sends a frame the centre starts (a read or a control command) under its own serial.
  void send(std::uint8_t command, const gb::app_data& d) {
    gb::frame f = frame(command, next_serial_++, gb::encode(d));
    say({{"event", "sent"},
         {"connection", number_},
         {"command", gb::command_name(command)},
         {"serial", f.serial},
         {"data", data_json(d)}},
        fmt::format("[{}] sent {} serial {}: type {}", number_, gb::command_name(command), f.serial, d.type));
    write(gb::encode(f));
  }

  void send_raw(std::vector<std::uint8_t> bytes) { write(std::move(bytes)); }

  /// A read sent in a noisy stream (the `noisy` command).
  void send_noisy(const std::string& how, const gb::app_data& d) {
    const auto serial = next_serial_++;
    const auto bytes = gb::encode(frame(gb::command::request, serial, gb::encode(d)));
    say({{"event", "sent"},
         {"connection", number_},
         {"command", "request"},
         {"serial", serial},
         {"noisy", how},
         {"sent_ms", epoch_ms()},
         {"data", data_json(d)}},
        fmt::format("[{}] sent request serial {}: type {} ({})", number_, serial, d.type, how));
    std::vector<std::vector<std::uint8_t>> pieces;
    auto gap = std::chrono::milliseconds(0);
    if (how == "stray") {
      pieces.push_back({0x40});
      pieces.back().insert(pieces.back().end(), bytes.begin(), bytes.end());
    } else if (how == "cut" || how == "pause") {
      const auto clock = gb::encode(frame(
          gb::command::control, 0xFFFF,
          gb::encode(gb::app_data{90, {{{gb::local_time_label(std::chrono::system_clock::now())}, {}}}})));
      pieces.emplace_back(clock.begin(), clock.begin() + 20);
      if (how == "cut") {
        pieces.back().insert(pieces.back().end(), bytes.begin(), bytes.end());
      } else {
        pieces.push_back(bytes);  // after the silence the UITD drops a frame cut short after
        gap = std::chrono::milliseconds(2500);
      }
    } else if (how == "flood") {
      pieces.emplace_back(5000, 0x40);
      pieces.back().insert(pieces.back().end(), bytes.begin(), bytes.end());
    } else if (how == "bytes") {
      for (auto b : bytes) pieces.push_back({b});
      gap = std::chrono::milliseconds(5);
    } else if (how == "mixed") {
      const auto half = bytes.size() / 2;
      pieces.push_back({0x00, 0x23, 0x40, 0x23, 0x23, 0x40, 0x7F});
      // A header of garbage whose length (40 bytes) reaches into the frame behind it.
      pieces.back().insert(pieces.back().end(), {0x40, 0x40});
      pieces.back().insert(pieces.back().end(), 22, 0x11);
      pieces.back().insert(pieces.back().end(), {0x28, 0x00, 0x02});
      pieces.back().insert(pieces.back().end(), bytes.begin(),
                           bytes.begin() + static_cast<std::ptrdiff_t>(half));
      pieces.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(half), bytes.end());
      pieces.back().insert(pieces.back().end(), {0x40, 0x11, 0x23});
      gap = std::chrono::milliseconds(50);
    } else {
      throw std::invalid_argument("noisy: stray, cut, pause, flood, bytes or mixed");
    }
    send_paced(std::move(pieces), gap);
  }

  void close() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  bool open() const { return socket_.is_open(); }

  gb::frame frame(std::uint8_t command, std::uint16_t serial, std::vector<std::uint8_t> data) const {
    gb::frame f;
    f.serial = serial;
    f.time = gb::local_time_label(std::chrono::system_clock::now());
    for (std::size_t i = 0; i < f.source.size(); ++i)
      f.source[i] = static_cast<std::uint8_t>(settings_.address >> (8 * i));
    f.destination = uitd_;
    f.command = command;
    f.data = std::move(data);
    return f;
  }

 private:
  void read() {
    socket_.async_read_some(
        asio::buffer(buffer_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (ec) {
            self->say({{"event", "closed"}, {"connection", self->number_}, {"reason", ec.message()}},
                      fmt::format("[{}] connection closed: {}", self->number_, ec.message()));
            self->close();
            return;
          }
          self->reader_.feed(std::span(self->buffer_.data(), n));
          while (auto r = self->reader_.next()) {
            if (r->frame) self->on_frame(*r->frame);
            if (r->fault) self->on_fault(*r->fault);
          }
          self->read();
        });
  }

  void on_fault(const gb::frame_fault& fault) {
    say({{"event", "bad_frame"}, {"connection", number_}, {"serial", fault.serial}, {"error", fault.detail}},
        fmt::format("[{}] BAD FRAME serial {}: {} (denied)", number_, fault.serial, fault.detail));
    write(gb::encode(frame(gb::command::deny, fault.serial, {})));
  }

  void on_frame(const gb::frame& f) {
    uitd_ = f.source;
    const auto received = epoch_ms();
    json j{{"event", "frame"},
           {"connection", number_},
           {"received_ms", received},
           {"command", gb::command_name(f.command)},
           {"serial", f.serial},
           {"source", address_number(f.source)},
           {"destination", address_number(f.destination)},
           {"time", f.time.text()}};
    std::vector<std::string> lines{fmt::format("[{}] {} serial {} from {} at {}", number_,
                                               gb::command_name(f.command), f.serial,
                                               address_number(f.source), f.time.text())};
    if (!f.data.empty()) {
      std::string error;
      if (const auto d = gb::decode_app_data(f.data, error)) {
        j["data"] = data_json(*d);
        for (auto& l : gb::describe(*d)) lines.push_back(std::move(l));
      } else {
        j["data_error"] = error;
        lines.push_back("  application data not readable: " + error);
      }
    } else if (f.command == gb::command::send_data) {
      j["heartbeat"] = true;
      lines.front() += " (heartbeat)";
    }
    std::string answer;
    if (f.command == gb::command::send_data) {
      if (behaviour_.silent > 0) {
        --behaviour_.silent;
        answer = "none (silent)";
      } else if (behaviour_.deny > 0) {
        --behaviour_.deny;
        answer = "deny";
        write(gb::encode(frame(gb::command::deny, f.serial, {})));
      } else {
        answer = "confirm";
        write(gb::encode(frame(gb::command::confirm, f.serial, {})));
      }
      j["answer"] = answer;
      lines.front() += " -> " + answer;
    }
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    text.pop_back();
    say(j, text);
  }

  /// Writes each piece `gap` after the one before.
  void send_paced(std::vector<std::vector<std::uint8_t>> pieces, std::chrono::milliseconds gap,
                  std::size_t next = 0) {
    if (next >= pieces.size()) return;
    write(std::move(pieces[next]));
    if (next + 1 == pieces.size()) return;
    auto timer = std::make_shared<asio::steady_timer>(socket_.get_executor(), gap);
    timer->async_wait([self = shared_from_this(), timer, pieces = std::move(pieces), gap,
                       next](boost::system::error_code ec) mutable {
      if (!ec) self->send_paced(std::move(pieces), gap, next + 1);
    });
  }

  void write(std::vector<std::uint8_t> bytes) {
    if (!socket_.is_open()) return;
    writes_.push_back(std::move(bytes));
    if (writes_.size() == 1) write_next();
  }

  void write_next() {
    asio::async_write(socket_, asio::buffer(writes_.front()),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        self->writes_.pop_front();
                        if (!self->writes_.empty()) self->write_next();
                      });
  }

  void say(const json& j, const std::string& text) const {
    if (settings_.json_out) {
      std::cout << j.dump() << std::endl;
    } else {
      std::cout << text << std::endl;
    }
  }

  tcp::socket socket_;
  const settings& settings_;
  behaviour& behaviour_;
  std::uint64_t number_;
  std::string peer_;
  gb::address uitd_{};
  std::uint16_t next_serial_{0};
  std::array<std::uint8_t, 4096> buffer_{};
  gb::frame_reader reader_;
  std::deque<std::vector<std::uint8_t>> writes_;
};

class centre {
 public:
  centre(asio::io_context& io, const tcp::endpoint& at, settings s)
      : acceptor_(io, at), input_(io, ::dup(STDIN_FILENO)), settings_(s) {}

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void start() {
    accept();
    read_command();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto c = std::make_shared<connection>(std::move(socket), settings_, behaviour_, ++count_);
      c->start();
      connections_.push_back(c);
      accept();
    });
  }

  void read_command() {
    asio::async_read_until(input_, line_, '\n', [this](boost::system::error_code ec, std::size_t) {
      if (ec) return;  // stdin closed: keep serving
      std::istream in(&line_);
      std::string text;
      std::getline(in, text);
      run(text);
      read_command();
    });
  }

  void run(const std::string& text) {
    std::istringstream words(text);
    std::string verb;
    if (!(words >> verb)) return;
    std::erase_if(connections_, [](const std::weak_ptr<connection>& w) {
      auto c = w.lock();
      return !c || !c->open();
    });
    const auto each = [&](auto&& fn) {
      for (auto& w : connections_) {
        if (auto c = w.lock()) fn(*c);
      }
    };
    try {
      if (verb == "query") {
        const auto d = read_request(words);
        each([&](connection& c) { c.send(gb::command::request, d); });
      } else if (verb == "noisy") {
        std::string how;
        words >> how;
        const auto d = read_request(words);
        each([&](connection& c) { c.send_noisy(how, d); });
      } else if (verb == "clock") {
        long shift = 0;
        words >> shift;
        const auto t = gb::local_time_label(std::chrono::system_clock::now() + std::chrono::seconds(shift));
        each([&](connection& c) { c.send(gb::command::control, gb::app_data{90, {{{t}, std::nullopt}}}); });
      } else if (verb == "inspect") {
        each([&](connection& c) {
          c.send(gb::command::control, gb::app_data{91, {{{std::int64_t{0}}, std::nullopt}}});
        });
      } else if (verb == "init") {
        each([&](connection& c) {
          c.send(gb::command::control, gb::app_data{89, {{{std::int64_t{0}}, std::nullopt}}});
        });
      } else if (verb == "silent") {
        words >> behaviour_.silent;
      } else if (verb == "deny") {
        words >> behaviour_.deny;
      } else if (verb == "garbage") {
        each([&](connection& c) {
          auto bad = gb::encode(c.frame(gb::command::request, 7, {}));
          bad[bad.size() - 3] ^= 0xFF;  // the checksum
          std::vector<std::uint8_t> bytes{0x00, 0x23, 0x40, 0x11};
          bytes.insert(bytes.end(), bad.begin(), bad.end());
          c.send_raw(std::move(bytes));
        });
      } else if (verb == "close") {
        each([](connection& c) { c.close(); });
      } else {
        throw std::invalid_argument("unknown command " + verb);
      }
    } catch (const std::exception& e) {
      std::cerr << "firegate-gb26875-center: " << e.what() << "\n";
    }
  }

  /// A read of TYPE with the values that follow it on the line (a time field is the centre's time).
  static gb::app_data read_request(std::istringstream& words) {
    int type = 0;
    words >> type;
    const auto* spec = gb::find_type(static_cast<std::uint8_t>(type));
    if (spec == nullptr || spec->uplink) throw std::invalid_argument(fmt::format("{} is not a read", type));
    // One object, or as many as the values on the line name (a read of several systems or
    // components: "query 62 1 1 101 1 1 102").
    gb::app_data d{static_cast<std::uint8_t>(type), {}};
    do {
      gb::info_object o;
      for (std::size_t i = 0; i < spec->fields.size(); ++i) {
        if (spec->fields[i].kind == gb::field_kind::time6) {
          o.values.emplace_back(gb::local_time_label(std::chrono::system_clock::now()));
        } else {
          std::int64_t v = 0;
          words >> v;
          o.values.emplace_back(v);
        }
      }
      d.objects.push_back(std::move(o));
    } while (words >> std::ws && !words.eof());
    return d;
  }

  tcp::acceptor acceptor_;
  asio::posix::stream_descriptor input_;
  asio::streambuf line_;
  settings settings_;
  behaviour behaviour_;
  std::vector<std::weak_ptr<connection>> connections_;
  std::uint64_t count_{0};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"firegate-gb26875-center: a reference GB/T 26875.3 monitoring centre"};
  std::string listen = "0.0.0.0:9026";
  settings s;
  cli.add_option("--listen", listen, "HOST:PORT to accept UITDs on (port 0: any free port, printed)")
      ->capture_default_str();
  cli.add_option("--address", s.address, "the centre's address (6 bytes, as a number)")
      ->capture_default_str();
  cli.add_flag("--json", s.json_out, "one JSON object a line (with the receipt time in ms)");
  CLI11_PARSE(cli, argc, argv);
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "firegate-gb26875-center: --listen HOST:PORT\n";
    return 2;
  }
  try {
    asio::io_context io;
    const tcp::endpoint at(asio::ip::make_address(listen.substr(0, colon)),
                           static_cast<unsigned short>(std::stoul(listen.substr(colon + 1))));
    centre c(io, at, s);
    c.start();
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
    if (s.json_out) {
      std::cout << json{{"event", "listening"}, {"port", c.port()}}.dump() << std::endl;
    } else {
      std::cout << "listening on port " << c.port() << std::endl;
    }
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "firegate-gb26875-center: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
