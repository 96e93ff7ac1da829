#include "libmodbus_server.hpp"

#include "support.hpp"

#include <modbus/modbus.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdexcept>

namespace firegate::test {

libmodbus_server::libmodbus_server() : port_(free_port()) {
  ctx_ = modbus_new_tcp("127.0.0.1", port_);
  // Room for the shipped profiles' registers: EFD-4T's settings sit at 0x0100–0x0106.
  map_ = modbus_mapping_new(0, 0, 0x200, 32);
  listen_fd_ = modbus_tcp_listen(ctx_, 1);
  if (ctx_ == nullptr || map_ == nullptr || listen_fd_ < 0)
    throw std::runtime_error("libmodbus server set-up failed");
  thread_ = std::thread([this] { serve_tcp(); });
}

libmodbus_server::libmodbus_server(const std::string& serial_device, int unit) : port_(0) {
  ctx_ = modbus_new_rtu(serial_device.c_str(), 9600, 'N', 8, 1);
  map_ = modbus_mapping_new(0, 0, 0x200, 32);
  if (ctx_ == nullptr || map_ == nullptr || modbus_set_slave(ctx_, unit) != 0 || modbus_connect(ctx_) != 0) {
    throw std::runtime_error("libmodbus RTU server set-up failed on " + serial_device);
  }
  // receive() returns every 100 ms so that the thread sees stopping_.
  modbus_set_indication_timeout(ctx_, 0, 100000);
  thread_ = std::thread([this] { serve_rtu(); });
}

libmodbus_server::~libmodbus_server() {
  stopping_ = true;
  // Unblocks accept() and receive() in the TCP server thread.
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (const int s = client_fd_.load(); s >= 0) ::shutdown(s, SHUT_RDWR);
  thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  modbus_mapping_free(map_);
  modbus_close(ctx_);
  modbus_free(ctx_);
}

void libmodbus_server::set_input_register(int address, std::uint16_t value) {
  std::lock_guard lock(mutex_);
  map_->tab_input_registers[address] = value;
}

void libmodbus_server::set_holding_register(int address, std::uint16_t value) {
  std::lock_guard lock(mutex_);
  map_->tab_registers[address] = value;
}

std::uint16_t libmodbus_server::holding_register(int address) {
  std::lock_guard lock(mutex_);
  return map_->tab_registers[address];
}

void libmodbus_server::reply(const std::uint8_t* query, int length) {
  if (silent_) return;
  std::lock_guard lock(mutex_);
  if (failing_) {
    modbus_reply_exception(ctx_, query, MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE);
  } else {
    const int kept = read_only_;
    const std::uint16_t old = kept >= 0 ? map_->tab_registers[kept] : std::uint16_t{0};
    modbus_reply(ctx_, query, length, map_);
    if (kept >= 0) map_->tab_registers[kept] = old;
  }
}

void libmodbus_server::serve_tcp() {
  while (!stopping_) {
    const int s = modbus_tcp_accept(ctx_, &listen_fd_);
    if (s < 0) return;
    client_fd_ = s;
    std::uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    for (int rc; !stopping_ && (rc = modbus_receive(ctx_, query)) >= 0;) {
      if (rc > 0) reply(query, rc);
    }
    client_fd_ = -1;
    ::close(s);
  }
}

void libmodbus_server::serve_rtu() {
  std::uint8_t query[MODBUS_RTU_MAX_ADU_LENGTH];
  while (!stopping_) {
    const int rc = modbus_receive(ctx_, query);
    if (rc > 0) reply(query, rc);  // 0: for another unit; -1: the indication timeout or a bad frame
  }
}

}  // namespace firegate::test
