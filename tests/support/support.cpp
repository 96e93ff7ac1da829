#include "support.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <mqtt/async_client.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

extern char** environ;

namespace firegate::test {

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

namespace {
sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}
}  // namespace

std::uint16_t free_port() {
  // The socket stays bound, never listening, until the test's process ends: the kernel gives the
  // port to no other bind to port 0 and to no connection as its local port, so a port a test names
  // in a site file long before its broker starts is still free then (another test's listener took
  // one once, in CI). SO_REUSEADDR lets the test's own listener bind it beside this socket
  // (mosquitto, libmodbus, Asio and Python's servers all set it); a connection to it is refused as
  // to a closed port.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  auto a = loopback(0);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind failed");
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool port_open(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  // A connection to a loopback port nothing listens on can take that very port as its own and
  // connect to itself (TCP's simultaneous open): that is no listener.
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (ok && ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
      ntohs(local.sin_port) == port) {
    ok = false;
  }
  ::close(fd);
  return ok;
}

temp_dir::temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "firegate-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

temp_dir::~temp_dir() {
  // FIREGATE_TEST_KEEP=1 keeps every test's folder (logs, database, configuration) for a post-mortem.
  if (const char* keep = std::getenv("FIREGATE_TEST_KEEP"); keep && std::string_view(keep) == "1") {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

child::child(std::vector<std::string> argv, std::filesystem::path log, bool stdin_pipe,
             std::vector<std::string> env)
    : log_(std::move(log)) {
  // Everything the child needs is prepared before fork(): between fork() and exec() only
  // async-signal-safe calls are allowed (the test process has Paho's threads).
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  // The test's own variables replace inherited ones of the same name (getenv finds the first), and
  // systemd's are never inherited: a test run by a service manager must not notify it.
  const auto name_of = [](std::string_view e) { return e.substr(0, e.find('=')); };
  std::vector<std::string_view> replaced{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};
  for (const auto& e : env) replaced.push_back(name_of(e));
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::find(replaced.begin(), replaced.end(), name_of(*e)) == replaced.end()) envp.push_back(*e);
  }
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int pipe_fds[2] = {-1, -1};
  if (stdin_pipe && ::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int in = stdin_pipe ? pipe_fds[0] : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || in < 0) throw std::runtime_error("cannot open the child's log or stdin");
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // Dies with the test process, even when a sanitizer or a crash skips the destructors.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(in);
  if (stdin_pipe) stdin_fd_ = pipe_fds[1];
  if (pid_ < 0) throw std::runtime_error("cannot start " + argv[0]);
}

child::~child() {
  if (running()) stop(SIGKILL, 5s);
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

bool child::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    return false;
  }
  return r == 0;
}

int child::stop(int signo, std::chrono::milliseconds timeout) {
  if (running()) ::kill(pid_, signo);
  if (!wait_until([this] { return !running(); }, timeout)) return -1;
  return status_;
}

void child::send(const std::string& line) {
  const std::string text = line + "\n";
  if (::write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error("write to child stdin failed");
  }
}

std::string child::log_text() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

broker::broker(const temp_dir& dir, std::uint16_t port, bool persistent, const std::string& extra)
    : port_(port != 0 ? port : free_port()) {
  // "user root": run as root, mosquitto would switch to its own user, and that credential change
  // clears the parent-death signal that stops it when a test dies without its destructors.
  // Without root the setting changes nothing.
  start(dir, fmt::format("listener {} 127.0.0.1\nallow_anonymous true\nuser root\n{}{}", port_,
                         persistent ? "persistence true\npersistence_location " + dir.path().string() + "/\n"
                                    : std::string("persistence false\n"),
                         extra.empty() ? std::string() : extra + "\n"));
}

broker::broker(const temp_dir& dir, const test_pki& pki, bool require_certificate)
    : port_(free_port()), tls_port_(free_port()) {
  start(dir, fmt::format("per_listener_settings false\nallow_anonymous true\nuser root\npersistence false\n"
                         "listener {} 127.0.0.1\n"
                         "listener {} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n"
                         "tls_version tlsv1.2\n",
                         port_, tls_port_, pki.ca.string(), pki.server_cert.string(), pki.server_key.string(),
                         require_certificate ? "true" : "false"));
}

broker::broker(const temp_dir& dir, const std::string& user, const std::string& password)
    : port_(free_port()), tls_port_(free_port()) {
  const auto file = dir / "passwords";
  const auto command = fmt::format("/usr/bin/mosquitto_passwd -b -c {} '{}' '{}' > {} 2>&1", file.string(),
                                   user, password, (dir / "passwd.log").string());
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error("mosquitto_passwd failed: " + read_text(dir / "passwd.log"));
  }
  // A site broker as docs/mqtt-ingest.md asks ("The site broker"): mosquitto's default queue of
  // 1,000 messages a client drops what comes after them, alarms included, when a sanitizer build
  // reads a flood slower than a sensor sends it (seen in CI: the flood test's fire was dropped).
  start(dir,
        fmt::format("per_listener_settings true\nuser root\npersistence false\nmax_queued_messages 10000\n"
                    "listener {} 127.0.0.1\nallow_anonymous true\n"
                    "listener {} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
                    port_, tls_port_, file.string()));
}

broker::broker(const temp_dir& dir, const std::string& user, const std::string& password,
               const std::vector<std::string>& subscribable)
    : port_(free_port()), tls_port_(free_port()) {
  // The plugin's file, made by mosquitto_ctrl (the password hashed as the plugin wants it), then given
  // a role that allows the filters: its default refuses subscriptions.
  const auto file = dir / "dynamic-security.json";
  const auto command = fmt::format("/usr/bin/mosquitto_ctrl dynsec init {} '{}' '{}' > {} 2>&1",
                                   file.string(), user, password, (dir / "dynsec.log").string());
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error("mosquitto_ctrl dynsec init failed: " + read_text(dir / "dynsec.log"));
  }
  auto config = nlohmann::json::parse(read_text(file));
  auto acls = nlohmann::json::array();
  for (const auto& f : subscribable) {
    acls.push_back({{"acltype", "subscribePattern"}, {"topic", f}, {"priority", 0}, {"allow", true}});
  }
  for (auto& role : config["roles"]) role["acls"] = acls;
  std::ofstream(file) << config.dump();
  start(dir, fmt::format("per_listener_settings true\nuser root\npersistence false\n"
                         "listener {} 127.0.0.1\nallow_anonymous true\n"
                         "listener {} 127.0.0.1\nplugin /usr/lib/{}/mosquitto_dynamic_security.so\n"
                         "plugin_opt_config_file {}\n",
                         port_, tls_port_, FIREGATE_MULTIARCH, file.string()));
}

void broker::start(const temp_dir& dir, const std::string& text) {
  const auto conf = dir / "mosquitto.conf";
  std::ofstream(conf) << text;
  // The log is appended to: a broker started again on the same directory counts its own line.
  const auto log = dir / "mosquitto.log";
  const auto runs = [&log] {
    return count_of(std::filesystem::exists(log) ? read_text(log) : std::string(), " running\n");
  };
  const auto runs_before = runs();
  process_ =
      std::make_unique<child>(std::vector<std::string>{"/usr/sbin/mosquitto", "-c", conf.string()}, log);
  // Ready when mosquitto says so, after it opened every listener: a port that answers may be
  // another's (mosquitto then exits on "Address already in use").
  if (!wait_until(
          [&] {
            return runs() > runs_before && port_open(port_) && (tls_port_ == 0 || port_open(tls_port_));
          },
          10s) ||
      !process_->running()) {
    throw std::runtime_error(
        fmt::format("mosquitto did not start on port {}: {}", port_, process_->log_text()));
  }
}

test_pki make_test_pki(const temp_dir& dir) {
  const auto p = [&](const char* name) { return dir / name; };
  test_pki k{p("ca.pem"),     p("server.pem"),   p("server.key"), p("client.pem"),
             p("client.key"), p("rogue-ca.pem"), p("rogue.pem"),  p("rogue.key")};
  std::ofstream(p("server.ext")) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  const std::string newkey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const auto signed_by = [&](const std::string& ca, const std::string& name, const std::string& cn,
                             const std::string& ext) {
    return fmt::format(
        "openssl req {0} -keyout {1}/{2}.key -out {1}/{2}.csr -subj /CN={3} && "
        "openssl x509 -req -in {1}/{2}.csr -CA {1}/{4}.pem -CAkey {1}/{4}.key -CAcreateserial -days 2 "
        "-out {1}/{2}.pem {5}",
        newkey, dir.path().string(), name, cn, ca, ext);
  };
  const auto script = fmt::format(
      "set -e; cd {0}; "
      "openssl req -x509 {1} -keyout ca.key -out ca.pem -days 2 -subj /CN=firegate-test-ca; "
      "openssl req -x509 {1} -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj /CN=rogue-ca; "
      "{2}; {3}; {4}",
      dir.path().string(), newkey,
      signed_by("ca", "server", "localhost", "-extfile " + p("server.ext").string()),
      signed_by("ca", "client", "gw-test", ""), signed_by("rogue-ca", "rogue", "gw-test", ""));
  const auto command = fmt::format("( {} ) > {}/openssl.log 2>&1", script, dir.path().string());
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error("openssl could not make the test certificates: " + read_text(p("openssl.log")));
  }
  return k;
}

void broker::stop() {
  process_->stop(SIGTERM);
}

pid_t broker::pid() const {
  return process_->pid();
}

simulator::simulator(const temp_dir& dir, int devices)
    : simulator(dir, std::vector<std::string>{"--devices", std::to_string(devices)}) {}

bool simulator::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return log_text().find(text) != std::string::npos; }, timeout);
}

simulator::simulator(const temp_dir& dir, std::vector<std::string> args) {
  const auto port_file = dir / "sim.port";
  std::filesystem::remove(port_file);  // one a simulator before this one left (the same site, back)
  std::vector<std::string> argv{firegate_sim_path(), "--port-file", port_file.string(), "--commands"};
  if (std::find(args.begin(), args.end(), "--serial") == args.end() &&
      std::find(args.begin(), args.end(), "--port") == args.end()) {
    argv.push_back("--port");
    argv.push_back("0");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = std::make_unique<child>(argv, dir / "sim.log", true);
  if (!wait_until([&] { return std::filesystem::exists(port_file); }, 10s)) {
    throw std::runtime_error("firegate-sim did not start: " + process_->log_text());
  }
  int port = 0;
  std::ifstream(port_file) >> port;
  port_ = static_cast<std::uint16_t>(port);
}

pty_pair::pty_pair(const temp_dir& dir) : a_(dir / "tty-a"), b_(dir / "tty-b"), log_(dir / "socat.log") {
  plug();
}

void pty_pair::unplug() {
  if (socat_) socat_->stop(SIGKILL);
  socat_.reset();
  std::error_code ignored;
  std::filesystem::remove(a_, ignored);  // a killed socat leaves its links behind
  std::filesystem::remove(b_, ignored);
}

void pty_pair::plug() {
  socat_ =
      std::make_unique<child>(std::vector<std::string>{"/usr/bin/socat", "pty,raw,echo=0,link=" + a_.string(),
                                                       "pty,raw,echo=0,link=" + b_.string()},
                              log_);
  if (!wait_until([this] { return std::filesystem::exists(a_) && std::filesystem::exists(b_); }, 10s)) {
    throw std::runtime_error("socat did not create the pty pair: " + socat_->log_text());
  }
}

mqtt_probe::mqtt_probe(std::uint16_t port, const std::string& filter) {
  static std::atomic<int> counter{0};
  client_ = std::make_unique<mqtt::async_client>(
      "tcp://127.0.0.1:" + std::to_string(port),
      "probe-" + std::to_string(::getpid()) + "-" + std::to_string(++counter), nullptr);
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    std::lock_guard lock(mutex_);
    messages_.push_back({m->get_topic(), m->get_payload_str()});
  });
  connect_token_ = client_->connect(mqtt::connect_options_builder().clean_session(true).finalize());
  connect_token_->wait();
  subscribe_token_ = client_->subscribe(filter, 1);
  subscribe_token_->wait();
}

mqtt_probe::~mqtt_probe() {
  // The token outlives the client: Paho 1.2 signals it after waking the waiter (see mqtt_uplink.hpp).
  mqtt::token_ptr token;
  try {
    token = client_->disconnect();
    token->wait_for(2s);
  } catch (const mqtt::exception&) {
  }
  client_.reset();
}

std::optional<mqtt_probe::message> mqtt_probe::wait_for(const std::function<bool(const message&)>& match,
                                                        std::chrono::milliseconds timeout) {
  return wait_first<message>([this] { return messages(); }, match, timeout);
}

void mqtt_probe::publish(const std::string& topic, const std::string& payload, bool retained) {
  auto token = client_->publish(topic, payload.data(), payload.size(), 1, retained);
  token->wait_for(5s);
}

std::vector<mqtt_probe::message> mqtt_probe::messages() {
  std::lock_guard lock(mutex_);
  return messages_;
}

std::string firegated_path() {
  return FIREGATED_PATH;
}
std::string firegate_sim_path() {
  return FIREGATE_SIM_PATH;
}
std::string firegatectl_path() {
  return FIREGATECTL_PATH;
}
std::string firegate_center_path() {
  return FIREGATE_CENTER_PATH;
}
std::string firegate_gb_center_path() {
  return FIREGATE_GB_CENTER_PATH;
}
std::string fake_timedated_path() {
  return FAKE_TIMEDATED_PATH;
}
std::string source_dir() {
  return FIREGATE_SOURCE_DIR;
}

std::string site_header(const std::filesystem::path& db, std::uint16_t broker_port) {
  return site_base(db) + fmt::format(R"([uplink.mqtt]
host = "127.0.0.1"
port = {}
keepalive_s = 5
)",
                                     broker_port);
}

std::string site_base(const std::filesystem::path& db) {
  // shipped = "": the tests see the source tree's profiles alone, whatever is installed on the machine.
  return fmt::format(R"([profiles]
dir = "{}"
shipped = ""
[gateway]
id = "gw-test"
[site]
id = "site-test"
name = "Test Hostel"
address = "2 Test Street, Hangzhou"
category = "small_hotel"
latitude = 30.25
longitude = 120.17
[site.responsible]
name = "Wang Wei"
phone = "+86 138 0000 0001"
[site.backup]
name = "Li Na"
phone = "+86 139 0000 0002"
[storage]
path = "{}"
flush_interval_ms = 200
[control]
socket = "{}"
)",
                     source_dir() + "/config/profiles", db.string(),
                     (db.parent_path() / "control.sock").string());
}

std::string modbus_tcp_bus(std::uint16_t modbus_port) {
  return fmt::format(R"([[buses]]
name = "tcp-1"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {}
timeout_ms = 500
poll_interval_ms = 500
alarm_interval_ms = 50
)",
                     modbus_port);
}

std::string sd1_site_config(const std::filesystem::path& db, std::uint16_t broker_port,
                            std::uint16_t modbus_port, int detectors, bool latch_fire) {
  return site_header(db, broker_port) + modbus_tcp_bus(modbus_port) +
         sd1_devices("tcp-1", detectors, latch_fire);
}

std::string sd1_devices(const std::string& bus, int detectors, bool latch_fire) {
  std::string text;
  for (int u = 1; u <= detectors; ++u) {
    text += fmt::format(
        "[[devices]]\nname = \"smoke-{}\"\nbus = \"{}\"\nprofile = \"SD-1\"\nunit_id = {}\nlocation = "
        "\"room {}\"\n",
        u, bus, u, u);
    if (!latch_fire) text += "[devices.rules.fire]\nlatch = false\n";
  }
  return text;
}

int mbpoll(const temp_dir& dir, std::uint16_t port, const std::string& unit, const std::string& table,
           const std::string& ref, const std::string& count, std::map<int, long>& values, std::string& out,
           const std::string& write_value) {
  static int n = 0;
  const auto log = dir / ("mbpoll-" + std::to_string(++n) + ".log");
  std::vector<std::string> argv{
      "/usr/bin/mbpoll",   "-m", "tcp", "-a", unit, "-t", table, "-r", ref, "-o", "2", "-p",
      std::to_string(port)};
  if (write_value.empty()) {
    argv.insert(argv.end(), {"-c", count, "-1", "127.0.0.1"});
  } else {
    argv.insert(argv.end(), {"127.0.0.1", write_value});  // mbpoll refuses -c and -1 with a write
  }
  child c(argv, log);
  const int rc = c.stop(0, 10s);
  out = c.log_text();
  std::regex line(R"(\[(\d+)\]:\s+(-?\d+))");
  for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it) {
    values[std::stoi((*it)[1])] = std::stol((*it)[2]);
  }
  return rc;
}

ctl_result ctl(const temp_dir& dir, std::vector<std::string> args, std::vector<std::string> prefix) {
  static int n = 0;
  const auto log = dir / fmt::format("ctl-{}.out", n++);
  auto argv = std::move(prefix);
  argv.push_back(firegatectl_path());
  argv.push_back("--socket");
  argv.push_back((dir / "control.sock").string());
  argv.insert(argv.end(), args.begin(), args.end());
  child c(argv, log);
  ctl_result r;
  r.exit = c.stop(0, 60s);  // signal 0: waits for the end
  r.out = read_text(log);
  return r;
}

const nlohmann::json* find_by(const nlohmann::json& array, const std::string& key, const std::string& value) {
  for (const auto& x : array) {
    if (x.value(key, std::string()) == value) return &x;
  }
  return nullptr;
}

std::optional<nlohmann::json> wait_event_where(mqtt_probe& platform, const std::string& type,
                                               const std::function<bool(const nlohmann::json&)>& also,
                                               std::chrono::milliseconds timeout) {
  auto m = platform.wait_for(
      [&](const mqtt_probe::message& msg) {
        const auto j = nlohmann::json::parse(msg.payload, nullptr, false);
        return j.is_object() && j.value("type", "") == type && also(j);
      },
      timeout);
  if (!m) return std::nullopt;
  return nlohmann::json::parse(m->payload);
}

std::string sounder_linkage(int unit, const std::string& detectors) {
  return fmt::format(R"([[devices]]
name = "relay-1"
bus = "tcp-1"
profile = "RL-2"
unit_id = {}
location = "1F corridor"
[[linkage]]
name = "sounder"
on = "fire"
devices = [{}]
device = "relay-1"
write = "siren"
value = 1
reset_value = 0
)",
                     unit, detectors);
}

bool is_event(const mqtt_probe::message& m, const std::string& type) {
  auto j = nlohmann::json::parse(m.payload, nullptr, false);
  return j.is_object() && j.value("type", "") == type;
}

std::optional<nlohmann::json> reply_to(mqtt_probe& platform, const std::string& id) {
  auto m = platform.wait_for(
      [&](auto& msg) {
        return msg.topic.ends_with("/cmd/reply") &&
               nlohmann::json::parse(msg.payload, nullptr, false).value("id", "") == id;
      },
      10s);
  return m ? std::optional(nlohmann::json::parse(m->payload)) : std::nullopt;
}

std::size_t count_of(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string demo_config(const temp_dir& dir, std::uint16_t broker_port) {
  auto text = read_text(source_dir() + "/config/demo/firegate.toml");
  text = std::regex_replace(text, std::regex("/tmp/firegate-demo/firegate.db"), (dir / "fg.db").string());
  text = std::regex_replace(text, std::regex("/tmp/firegate-demo/control.sock"),
                            (dir / "control.sock").string());
  text =
      std::regex_replace(text, std::regex("\"\\.\\./profiles\""), "\"" + source_dir() + "/config/profiles\"");
  return std::regex_replace(text, std::regex("port = 18830"), "port = " + std::to_string(broker_port));
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace firegate::test

namespace firegate::test {

std::string issued_now() {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", fmt::gmtime(std::time(nullptr)));
}

std::string command_text(const std::string& id, const std::string& name, const nlohmann::json& args) {
  return nlohmann::json{{"id", id}, {"command", name}, {"issued", issued_now()}, {"args", args}}.dump();
}

}  // namespace firegate::test
