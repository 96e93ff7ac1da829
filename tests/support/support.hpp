#pragma once
// Test support: processes started and killed by pid, free ports, temporary directories, a real
// mosquitto per test, and an MQTT probe that records what the platform would receive.
// Nothing here sleeps to synchronise: every wait is a condition with a deadline.

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mqtt/token.h>
#include <nlohmann/json.hpp>

namespace mqtt {
class async_client;
}

namespace firegate::test {

using namespace std::chrono_literals;

/// Polls `condition` every 10 ms until it holds or `timeout` passes. Returns whether it held.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// The first of what `items` gives (asked again every 10 ms) that `match` takes, waiting up to
/// `timeout`; nullopt if none did.
template <class T>
std::optional<T> wait_first(const std::function<std::vector<T>()>& items,
                            const std::function<bool(const T&)>& match, std::chrono::milliseconds timeout) {
  std::optional<T> found;
  wait_until(
      [&] {
        for (auto& x : items()) {
          if (match(x)) {
            found = std::move(x);
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

/// A free port on 127.0.0.1, kept from every other process until this one ends: bind it with
/// SO_REUSEADDR (every listener the tests start does).
std::uint16_t free_port();

/// Whether a TCP connection to 127.0.0.1:port succeeds.
bool port_open(std::uint16_t port);

/// A fresh directory removed with its contents at the end of the test.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// A child process with stdout and stderr in `log`. Killed (SIGKILL) by pid if still running at the end.
class child {
 public:
  /// `env`: extra NAME=VALUE entries added to this process's environment.
  child(std::vector<std::string> argv, std::filesystem::path log, bool stdin_pipe = false,
        std::vector<std::string> env = {});
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  pid_t pid() const { return pid_; }
  /// Sends `signo` and waits for the exit; returns the exit status (128 + signal if killed), -1 on timeout.
  int stop(int signo, std::chrono::milliseconds timeout = 10s);
  bool running();
  void send(const std::string& line);  ///< writes to stdin (stdin_pipe only)
  std::string log_text() const;

 private:
  pid_t pid_{-1};
  int stdin_fd_{-1};
  int status_{-1};
  std::filesystem::path log_;
};

/// A virtual serial line: socat joins two pseudo-terminals, `a()` and `b()`, as a null-modem cable.
class pty_pair {
 public:
  explicit pty_pair(const temp_dir& dir);
  std::string a() const { return a_.string(); }
  std::string b() const { return b_.string(); }
  /// The cable pulled, as a USB adapter unplugged: socat killed, both terminals hung up (every read
  /// and write on them fails with EIO) and their names gone.
  void unplug();
  /// Plugged back in: new terminals behind the same names.
  void plug();

 private:
  std::filesystem::path a_, b_;
  std::filesystem::path log_;
  std::unique_ptr<child> socat_;
};

/// firegate-sim taking "UNIT FIELD VALUE" changes on its standard input.
class simulator {
 public:
  /// `devices` SD-1 detectors (units 1..devices) on a free port.
  simulator(const temp_dir& dir, int devices);
  /// With these arguments (such as {"--devices", "EFD-4T:1", "--serial", pty.b()}); on a free TCP
  /// port unless they name a serial line or a port ("--port", a free_port() to start one again on).
  simulator(const temp_dir& dir, std::vector<std::string> args);
  /// The first listening port (0 when serving a serial line only).
  std::uint16_t port() const { return port_; }
  /// Waits until the simulator's log has `text`; false after `timeout`.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout = 5s) const;
  void send(const std::string& line) { process_->send(line); }
  std::string log_text() const { return process_->log_text(); }
  /// Ends it with `signo` (SIGKILL: the server gone, as a pulled cable or a dead gateway).
  int stop(int signo) { return process_->stop(signo); }

 private:
  std::unique_ptr<child> process_;
  std::uint16_t port_{0};
};

/// Certificates made by openssl for one test (EC P-256, two days): a CA, the broker's certificate
/// for localhost and 127.0.0.1, a client certificate from that CA, and a rogue CA with a client
/// certificate of its own.
struct test_pki {
  std::filesystem::path ca, server_cert, server_key, client_cert, client_key, rogue_ca, rogue_cert, rogue_key;
};
test_pki make_test_pki(const temp_dir& dir);

/// A mosquitto of the test's own on a free port, never the system service.
class broker {
 public:
  /// On `port`, or a free one when 0. A persistent broker keeps sessions, subscriptions and queued
  /// QoS 1 messages across a stop() and a new broker on the same directory and port.
  /// `extra`: more lines for its configuration (such as "max_packet_size 4300").
  explicit broker(const temp_dir& dir, std::uint16_t port = 0, bool persistent = false,
                  const std::string& extra = {});
  /// A plain listener (port()) for the test's probes, and a TLS listener (tls_port()) with `pki`'s
  /// server certificate; `require_certificate`: mutual TLS, clients need a certificate from pki.ca.
  broker(const temp_dir& dir, const test_pki& pki, bool require_certificate);
  /// A plain listener (port()) for the test's probes, and one on tls_port() (no TLS) that takes
  /// only `user` with `password`.
  broker(const temp_dir& dir, const std::string& user, const std::string& password);
  /// The same, the second listener under mosquitto's dynamic-security plugin, which lets `user`
  /// subscribe only to the filters `subscribable` (patterns, "#" and "+" as in MQTT) and refuses the
  /// rest in its SUBACK (an acl_file grants every subscription and filters what is delivered).
  broker(const temp_dir& dir, const std::string& user, const std::string& password,
         const std::vector<std::string>& subscribable);
  std::uint16_t port() const { return port_; }
  std::uint16_t tls_port() const { return tls_port_; }
  /// Stops it as an operator would (SIGTERM: a persistent broker saves its state first).
  void stop();
  pid_t pid() const;

 private:
  void start(const temp_dir& dir, const std::string& conf);
  std::uint16_t port_;
  std::uint16_t tls_port_{0};
  std::unique_ptr<child> process_;
};

/// Subscribes to a filter and keeps every message it receives.
class mqtt_probe {
 public:
  struct message {
    std::string topic;
    std::string payload;
  };
  mqtt_probe(std::uint16_t port, const std::string& filter);
  ~mqtt_probe();
  /// The first message (in arrival order) for which `match` holds, waiting up to `timeout`.
  std::optional<message> wait_for(const std::function<bool(const message&)>& match,
                                  std::chrono::milliseconds timeout);
  std::vector<message> messages();
  /// Publishes with QoS 1 (retained: the broker keeps it for later subscribers) and waits for the
  /// broker's acknowledgement.
  void publish(const std::string& topic, const std::string& payload, bool retained = false);

 private:
  mqtt::token_ptr connect_token_, subscribe_token_;  ///< released after client_ (see the destructor)
  std::unique_ptr<mqtt::async_client> client_;
  std::mutex mutex_;
  std::vector<message> messages_;
};

/// The common head of a test's site file: profiles from the source tree, gateway gw-test, site
/// site-test (Test Hostel, its contacts), readings flushed every 200 ms to `db`, the control socket
/// beside it (control.sock), the platform broker at 127.0.0.1:broker_port. Buses and devices follow.
std::string site_header(const std::filesystem::path& db, std::uint16_t broker_port);
/// The same without any uplink: a test adds its own [uplink.*] tables.
std::string site_base(const std::filesystem::path& db);

/// The Modbus TCP bus "tcp-1" to the simulator at 127.0.0.1:modbus_port: timeout 500 ms, full poll
/// every 500 ms, alarm group every 50 ms.
std::string modbus_tcp_bus(std::uint16_t modbus_port);
/// A site file for firegated: `detectors` SD-1 units (smoke-1.., unit ids 1..) on the simulator at
/// 127.0.0.1:modbus_port, alarm group every 50 ms, readings flushed every 200 ms, the platform broker
/// at 127.0.0.1:broker_port, the database at `db` and the control socket beside it (control.sock).
/// `latch_fire` false: a fire alarm ends when its detector clears, without an acknowledgement (the site
/// override latch = false).
std::string sd1_site_config(const std::filesystem::path& db, std::uint16_t broker_port,
                            std::uint16_t modbus_port, int detectors, bool latch_fire = true);
/// SD-1 detectors "smoke-1".."smoke-N" at units 1..N on `bus`, in "room N": [[devices]] entries.
std::string sd1_devices(const std::string& bus, int detectors, bool latch_fire = true);

/// An RL-2 relay module "relay-1" (1F corridor) at `unit` on tcp-1, and the linkage "sounder": a
/// fire of any of `detectors` sets its siren to 1, and back to 0 when the fire ends. Appended to a
/// site file from sd1_site_config.
std::string sounder_linkage(int unit, const std::string& detectors);

/// Whether a message is an event of `type` (its JSON "type").
bool is_event(const mqtt_probe::message& m, const std::string& type);
/// The first event (in arrival order) of `type` for which `also` holds, parsed; waits up to `timeout`.
std::optional<nlohmann::json> wait_event_where(mqtt_probe& platform, const std::string& type,
                                               const std::function<bool(const nlohmann::json&)>& also,
                                               std::chrono::milliseconds timeout = 10s);
/// Now as a platform command's "issued" time (ISO 8601, UTC).
std::string issued_now();
/// A platform command (id, command, issued now, args), as the cmd topic takes it.
std::string command_text(const std::string& id, const std::string& name,
                         const nlohmann::json& args = nlohmann::json::object());
/// The reply to the platform command `id` (on a cmd/reply topic), waiting up to 10 s.
std::optional<nlohmann::json> reply_to(mqtt_probe& platform, const std::string& id);

/// What firegatectl did.
struct ctl_result {
  int exit{-1};
  std::string out;  ///< stdout and stderr together
  nlohmann::json doc() const { return nlohmann::json::parse(out, nullptr, false); }
};

/// Runs firegatectl to its end against the daemon whose socket is dir/control.sock. `prefix`: a
/// command before it (setpriv, to be another user).
ctl_result ctl(const temp_dir& dir, std::vector<std::string> args, std::vector<std::string> prefix = {});

/// The element of a JSON array whose `key` is `value`, or null (keep `array` alive meanwhile).
const nlohmann::json* find_by(const nlohmann::json& array, const std::string& key, const std::string& value);

/// The whole of a text file ("" when it cannot be read).
std::string read_text(const std::filesystem::path& p);

/// How many times `needle` occurs in `text` (overlapping ones each counted).
std::size_t count_of(std::string_view text, std::string_view needle);

/// The demo's configuration (config/demo/firegate.toml) with the test's storage and control socket
/// in `dir`, the source tree's profiles and the broker's port.
std::string demo_config(const temp_dir& dir, std::uint16_t broker_port);

/// Runs mbpoll, a Modbus master independent of firegate, once against 127.0.0.1:port: a read of
/// `count` values of `table` (mbpoll's -t: "0" coils, "1" discrete inputs, "3" input registers, "4"
/// holding registers) from reference `ref` (1-based), or a write of `write_value` when given.
/// Returns its exit code; the values it printed, by reference number, go to `values` and its whole
/// output to `out`.
int mbpoll(const temp_dir& dir, std::uint16_t port, const std::string& unit, const std::string& table,
           const std::string& ref, const std::string& count, std::map<int, long>& values, std::string& out,
           const std::string& write_value = {});

/// Built binaries (paths set by CMake).
std::string firegated_path();
std::string firegate_sim_path();
std::string firegatectl_path();
std::string firegate_center_path();
std::string firegate_gb_center_path();
std::string fake_timedated_path();
std::string source_dir();

}  // namespace firegate::test
