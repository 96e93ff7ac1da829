// firegatectl: the technician's CLI. This first version checks a configuration file with the
// daemon's own validator; the CLI issue adds the control socket and the rest.

#include "config/config_loader.hpp"
#include "driver.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App cli{"firegatectl: inspect and commission a firegate gateway"};
  cli.set_version_flag("-V,--version", std::string("firegatectl ") + FIREGATE_VERSION);
  cli.require_subcommand(1);
  auto* config = cli.add_subcommand("config", "configuration commands");
  config->require_subcommand(1);
  std::string path = "/etc/firegate/firegate.toml";
  auto* check = config->add_subcommand("check", "validate a configuration file and list every error");
  check->add_option("file", path, "configuration file")->capture_default_str();
  CLI11_PARSE(cli, argc, argv);

  if (check->parsed()) {
    auto loaded = firegate::config::load_config_file(path, firegate::driver_parsers());
    if (!loaded.config) {
      std::cerr << loaded.error_text() << loaded.errors.size() << " error(s) in " << path << "\n";
      return 1;
    }
    std::cout << path << ": configuration is valid\n";
  }
  return 0;
}
