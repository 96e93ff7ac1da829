#pragma once
// libmodbus's TCP server, an independent Modbus implementation, serving one register mapping on a
// free loopback port from its own thread. Tests set registers and misbehaviours under its lock.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

typedef struct _modbus modbus_t;
struct _modbus_mapping_t;

namespace firegate::test {

class libmodbus_server {
 public:
  /// Modbus TCP on a free loopback port.
  libmodbus_server();
  /// Modbus RTU on a serial device (one end of a pty_pair), answering as `unit`, 9600 8N1.
  libmodbus_server(const std::string& serial_device, int unit);
  ~libmodbus_server();
  libmodbus_server(const libmodbus_server&) = delete;
  libmodbus_server& operator=(const libmodbus_server&) = delete;

  std::uint16_t port() const { return port_; }
  void set_input_register(int address, std::uint16_t value);
  void set_holding_register(int address, std::uint16_t value);
  std::uint16_t holding_register(int address);
  /// Acknowledge writes to this holding register but keep its value (a device that refuses a
  /// setting while still echoing it, which only a read-back catches).
  void set_read_only(int address) { read_only_ = address; }
  /// Drop requests without answering (a dead device).
  void set_silent(bool silent) { silent_ = silent; }
  /// Answer every request with exception 4 (server device failure).
  void set_failing(bool failing) { failing_ = failing; }

 private:
  void serve_tcp();
  void serve_rtu();
  void reply(const std::uint8_t* query, int length);

  std::uint16_t port_;
  modbus_t* ctx_{nullptr};
  _modbus_mapping_t* map_{nullptr};
  int listen_fd_{-1};
  std::atomic<int> client_fd_{-1};
  std::atomic<int> read_only_{-1};
  std::atomic<bool> stopping_{false}, silent_{false}, failing_{false};
  std::mutex mutex_;
  std::thread thread_;
};

}  // namespace firegate::test
