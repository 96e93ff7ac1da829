// A stand-in for systemd-timedated on a test's own bus: owns org.freedesktop.timedate1 and serves
// /org/freedesktop/timedate1's NTPSynchronized property (the one timedatectl's "System clock
// synchronized" shows), read from a file at each request ("1": synchronised, anything else: not),
// so a test can flip it. The bus is DBUS_SYSTEM_BUS_ADDRESS's (the test's dbus-daemon). Prints
// "fake timedated ready" once the name is owned; runs until killed.
//
// Usage: fake_timedated STATE-FILE

#include <systemd/sd-bus.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace {

const char* state_file = nullptr;

int get_ntp_synchronized(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void*,
                         sd_bus_error*) {
  std::ifstream in(state_file);
  std::string text;
  std::getline(in, text);
  return sd_bus_message_append(reply, "b", text == "1" ? 1 : 0);
}

const sd_bus_vtable timedate_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("NTPSynchronized", "b", get_ntp_synchronized, 0, 0),
    SD_BUS_VTABLE_END,
};

int fail(const char* what, int r) {
  std::fprintf(stderr, "fake timedated: %s: %s\n", what, std::strerror(-r));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fake_timedated STATE-FILE\n");
    return 2;
  }
  state_file = argv[1];
  sd_bus* bus = nullptr;
  if (const int r = sd_bus_open_system(&bus); r < 0) return fail("the bus", r);
  sd_bus_slot* slot = nullptr;
  if (const int r = sd_bus_add_object_vtable(bus, &slot, "/org/freedesktop/timedate1",
                                             "org.freedesktop.timedate1", timedate_vtable, nullptr);
      r < 0)
    return fail("the object", r);
  if (const int r = sd_bus_request_name(bus, "org.freedesktop.timedate1", 0); r < 0)
    return fail("the name", r);
  std::printf("fake timedated ready\n");
  std::fflush(stdout);
  for (;;) {
    const int r = sd_bus_process(bus, nullptr);
    if (r < 0) return fail("processing", r);
    if (r > 0) continue;
    if (const int w = sd_bus_wait(bus, UINT64_MAX); w < 0) return fail("waiting", w);
  }
}
