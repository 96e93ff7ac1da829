// firegated: the fire-protection gateway daemon.

#include "app/application.hpp"
#include "app/logging.hpp"
#include "config/config_loader.hpp"
#include "driver.hpp"
#include "mqtt_client/loop_client.hpp"
#include "store/store.hpp"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>

namespace {
/// sysexits.h's EX_CONFIG: the site file stops the start, and starting again cannot help. The unit's
/// RestartPreventExitStatus names it, so systemd does not restart in a loop. (A database from a newer
/// firegate does not stop the start: the daemon leaves the file alone and protects from memory.)
constexpr int exit_config = 78;
}  // namespace

int main(int argc, char** argv) {
  firegate::paho::leave_openssl_to_itself();  // before any Paho client exists
  CLI::App cli{"firegated: smart fire-protection IoT gateway daemon"};
  std::string config_path = FIREGATE_CONFIG_FILE;
  std::string check_path;
  std::string log_level = "info";
  cli.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  cli.add_option("--check-config", check_path, "validate FILE, print every error, exit 0 (valid) or 1");
  cli.add_option("-l,--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  cli.set_version_flag("-V,--version", std::string("firegated ") + FIREGATE_VERSION);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here with 0; a wrong use of the options is a usage error (2).
    return cli.exit(e) == 0 ? 0 : 2;
  }

  if (!check_path.empty()) {
    auto loaded = firegate::config::load_config_file(check_path, firegate::driver_parsers());
    if (!loaded.config) {
      std::cerr << loaded.error_text() << loaded.errors.size() << " error(s) in " << check_path << "\n";
      return 1;
    }
    // Warnings first, as errors would be: what will not work well, though the site may start.
    const auto warnings = firegate::config::config_warnings(*loaded.config);
    for (const auto& w : warnings)
      std::cout << check_path << ":" << w.line << " " << w.path << ": warning: " << w.message << "\n";
    std::cout << check_path << ": configuration is valid (" << loaded.config->buses.size() << " buses, "
              << loaded.config->devices.size() << " devices"
              << (warnings.empty() ? std::string() : ", " + std::to_string(warnings.size()) + " warning(s)")
              << ")"
              << (loaded.config->buses.empty()
                      ? "; no [[buses]] yet: nothing is polled until the site's buses "
                        "and devices are added"
                      : "")
              << "\n";
    return 0;
  }

  // A stop or reload asked while the daemon is still starting (systemctl restart twice, a stop right
  // after a start) is held until the loop takes signals (application::run), not left to the default
  // action that would end the process mid-start. Threads started meanwhile keep them blocked.
  const auto held = firegate::application::signals_taken();
  pthread_sigmask(SIG_BLOCK, &held, nullptr);

  if (!firegate::setup_logging(log_level, firegate::stderr_is_journal())) {
    spdlog::warn("unknown log level level={} using=info", log_level);
  }
  auto loaded = firegate::config::load_config_file(config_path, firegate::driver_parsers());
  if (!loaded.config) {
    for (const auto& e : loaded.errors.items()) {
      spdlog::error("config error file={} line={} key={} problem=\"{}\"", loaded.file, e.line, e.path,
                    e.message);
    }
    spdlog::error(
        "not starting: configuration invalid file={} errors={} check=\"firegated --check-config {}\"",
        config_path, loaded.errors.size(), config_path);
    return exit_config;
  }
  for (const auto& w : firegate::config::config_warnings(*loaded.config)) {
    spdlog::warn("config warning file={} line={} key={} problem=\"{}\"", config_path, w.line, w.path,
                 w.message);
  }
  if (loaded.config->buses.empty()) {
    spdlog::warn(
        "no buses configured file={} action=\"describe the site's buses and devices, then restart "
        "(docs/install.md, "
        "step 4)\"",
        config_path);
  }
  try {
    firegate::application app(config_path, std::move(*loaded.config));
    return app.run();
  } catch (const firegate::store_error& e) {
    spdlog::critical("not starting: {}", e.what());
  } catch (const std::exception& e) {
    spdlog::critical("firegated failed error=\"{}\"", e.what());
  }
  return 1;
}
