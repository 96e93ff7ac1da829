// firegate-sim: simulated field devices for the demo, the tests and the benchmarks. Serves SD-1
// smoke detectors over Modbus TCP with firegate's own codec; changes come from a timed script
// (--script) or from commands on standard input, and each change is logged with a timestamp.
//
// Script and stdin lines:   [AT_SECONDS] UNIT FIELD VALUE     e.g. "5 1 state 1" (script), "1 state 0"
// (stdin) FIELD: state (0 normal, 1 fire, 2 fault, 3 dirty, 4 test), smoke, temperature, supply, answering
// (0/1).

#include "sim_fleet.hpp"

#include "modbus/codec/mbap.hpp"
#include "modbus/modbus_error.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>

#include <unistd.h>
#include <charconv>
#include <fstream>
#include <iostream>
#include <sstream>

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using namespace firegate;

namespace {

void log_line(std::string_view text) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::cout << fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z sim {}\n",
                           fmt::gmtime(std::chrono::system_clock::to_time_t(now)), ms % 1000, text)
            << std::flush;
}

struct change {
  double at{0};
  std::uint8_t unit{0};
  std::string field;
  long value{0};
};

/// Parses "UNIT FIELD VALUE" (with `timed`, "AT UNIT FIELD VALUE"). Returns an error text.
std::optional<std::string> parse_change(const std::string& line, bool timed, change& out) {
  std::istringstream in(line);
  long unit = 0;
  if (timed && !(in >> out.at)) return "expected seconds first";
  if (!(in >> unit >> out.field >> out.value)) return "expected UNIT FIELD VALUE";
  if (unit < 1 || unit > 247) return "unit outside 1-247";
  out.unit = static_cast<std::uint8_t>(unit);
  return std::nullopt;
}

void apply(sim::fleet& f, const change& c) {
  if (auto err = f.apply(c.unit, c.field, c.value)) {
    log_line(fmt::format("change rejected unit={} field={} value={} error=\"{}\"", c.unit, c.field, c.value,
                         *err));
  } else {
    log_line(fmt::format("change unit={} {}={}", c.unit, c.field, c.value));
  }
}

/// The PDU an SD-1 answers with: register reads, a write to its command register, exceptions for
/// the rest as a real detector would (§7 of the application protocol).
void answer(sim::fleet& f, std::uint8_t unit, std::span<const std::uint8_t> pdu,
            std::vector<std::uint8_t>& reply) {
  auto decoded = modbus::decode_request(pdu);
  if (!decoded) {
    const auto code = decoded.error() == modbus::modbus_errc::illegal_function ? 1 : 3;
    modbus::encode_exception(pdu.empty() ? 0 : pdu[0], static_cast<std::uint8_t>(code), reply);
    return;
  }
  if (const auto* read = std::get_if<modbus::read_request>(&*decoded)) {
    if (!modbus::is_register_read(read->function)) return modbus::encode_exception(pdu[0], 1, reply);
    std::vector<std::uint16_t> regs;
    for (std::uint16_t i = 0; i < read->count; ++i) {
      auto v = f.read_register(unit, static_cast<std::uint16_t>(read->address + i));
      if (!v) return modbus::encode_exception(pdu[0], 2, reply);  // illegal data address
      regs.push_back(*v);
    }
    return modbus::encode_read_response(read->function, regs, reply);
  }
  const auto& write = std::get<modbus::write_request>(*decoded);
  if (write.function != modbus::function_code::write_single_register)
    return modbus::encode_exception(pdu[0], 1, reply);
  if (write.address != sim::sd1_command_register) return modbus::encode_exception(pdu[0], 2, reply);
  const auto command = write.registers[0];
  if (command != 1 && command != 2) return modbus::encode_exception(pdu[0], 3, reply);
  log_line(fmt::format("command unit={} {}", unit, command == 1 ? "silence" : "reset"));
  if (command == 2) f.apply(unit, "state", 0);  // a reset returns the detector to normal
  modbus::encode_write_response(write, reply);
}

awaitable<void> serve(tcp::socket socket, sim::fleet& f) {
  try {
    std::array<std::uint8_t, modbus::mbap_header_size> header{};
    std::vector<std::uint8_t> pdu, reply;
    for (;;) {
      co_await asio::async_read(socket, asio::buffer(header), asio::use_awaitable);
      auto h = modbus::decode_mbap(header);
      if (!h) co_return;  // not Modbus: drop the connection, as devices do
      pdu.resize(h->pdu_size());
      co_await asio::async_read(socket, asio::buffer(pdu), asio::use_awaitable);
      if (!f.answers(h->unit_id)) continue;  // a dead device: no answer at all
      reply.clear();
      answer(f, h->unit_id, pdu, reply);
      auto adu = modbus::encode_adu(h->transaction_id, h->unit_id, reply);
      co_await asio::async_write(socket, asio::buffer(adu), asio::use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    // The master went away.
  }
}

awaitable<void> listen(tcp::acceptor& acceptor, sim::fleet& f) {
  for (;;) {
    auto socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), f), asio::detached);
  }
}

awaitable<void> run_script(std::vector<change> script, sim::fleet& f) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto start = std::chrono::steady_clock::now();
  for (const auto& c : script) {
    timer.expires_at(start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(c.at)));
    co_await timer.async_wait(asio::use_awaitable);
    apply(f, c);
  }
}

awaitable<void> drift(sim::fleet& f) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(asio::use_awaitable);
    f.drift();
  }
}

awaitable<void> read_commands(asio::posix::stream_descriptor& in, sim::fleet& f) {
  asio::streambuf buf;
  for (;;) {
    boost::system::error_code ec;
    co_await asio::async_read_until(in, buf, '\n', asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // stdin closed: keep serving
    std::istream is(&buf);
    std::string line;
    std::getline(is, line);
    if (line.empty() || line[0] == '#') continue;
    change c;
    if (auto err = parse_change(line, false, c)) {
      log_line(fmt::format("command rejected line=\"{}\" error=\"{}\"", line, *err));
      continue;
    }
    apply(f, c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"firegate-sim: simulated fire-protection field devices (Modbus TCP)"};
  std::string bind = "127.0.0.1";
  std::uint16_t port = 1502;
  std::size_t devices = 3;
  std::string script_path, port_file;
  bool commands = false;
  std::uint64_t seed = 1;
  cli.add_option("--bind", bind, "address to listen on")->capture_default_str();
  cli.add_option("--port", port, "TCP port (0: any free port; see --port-file)")->capture_default_str();
  cli.add_option("--devices", devices, "SD-1 smoke detectors at unit ids 1..N")
      ->capture_default_str()
      ->check(CLI::Range(1, 247));
  cli.add_option("--script", script_path, "timed changes: AT_SECONDS UNIT FIELD VALUE per line");
  cli.add_option("--port-file", port_file, "write the listening port to this file once ready");
  cli.add_flag("--commands", commands, "read UNIT FIELD VALUE changes from standard input");
  cli.add_option("--seed", seed, "random seed for drift")->capture_default_str();
  CLI11_PARSE(cli, argc, argv);

  std::vector<change> script;
  if (!script_path.empty()) {
    std::ifstream in(script_path);
    if (!in) {
      std::cerr << script_path << ": cannot read the script file\n";
      return 1;
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == '#') continue;
      change c;
      if (auto err = parse_change(line, true, c)) {
        std::cerr << script_path << ":" << n << ": " << *err << "\n";
        return 1;
      }
      script.push_back(c);
    }
  }

  try {
    asio::io_context io;
    sim::fleet f(1, devices, seed);
    tcp::acceptor acceptor(io, {asio::ip::make_address(bind), port});
    const auto bound = acceptor.local_endpoint().port();
    if (!port_file.empty()) {
      const auto tmp = port_file + ".tmp";
      std::ofstream(tmp) << bound << "\n";
      std::rename(tmp.c_str(), port_file.c_str());
    }
    log_line(fmt::format("listening addr={}:{} devices={} profile=SD-1 units=1-{}", bind, bound, devices,
                         devices));
    asio::co_spawn(io, listen(acceptor, f), asio::detached);
    asio::co_spawn(io, drift(f), asio::detached);
    if (!script.empty()) asio::co_spawn(io, run_script(std::move(script), f), asio::detached);
    asio::posix::stream_descriptor in(io, ::dup(STDIN_FILENO));
    if (commands) asio::co_spawn(io, read_commands(in, f), asio::detached);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { io.stop(); });
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "firegate-sim: " << e.what() << " (is the port free?)\n";
    return 1;
  }
  return 0;
}
