#include "clock_watch.hpp"

#include <dlfcn.h>
#include <sys/timex.h>
#include <systemd/sd-bus.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>

namespace firegate {

namespace {
/// The maximum error (µs) at or over which the kernel counts the clock unsynchronised: what it lets
/// maxerror grow to (NTP_PHASE_LIMIT) without a time service adjusting it.
constexpr long unsynchronised_error_us = 16'000'000;
}  // namespace

clock_reading read_kernel_clock() {
  timex t{};  // modes 0: read only
  clock_reading r;
  if (::adjtimex(&t) < 0) {
    const int err = errno;
    r.source = "adjtimex";
    r.denied = err == EPERM;
    r.error = std::string("adjtimex: ") + std::strerror(err) +
              (err == EPERM ? " (a system call filter denies it: ProtectClock= or @clock in the unit)" : "");
    return r;
  }
  r.source = "adjtimex";
  r.synchronised = t.maxerror < unsynchronised_error_us;
  r.max_error_us = t.maxerror;
  r.est_error_us = t.esterror;
  return r;
}

namespace {

/// libsystemd's sd-bus, loaded the first time timedated is asked: a daemon that reads the kernel's
/// clock, as the packaged unit lets it, never maps the library (about 1 MiB resident with the
/// compression and crypto libraries it pulls in; docs/performance.md). Loaded once, never unloaded.
struct sd_bus_library {
  decltype(&sd_bus_open_system) open_system{};
  decltype(&sd_bus_flush_close_unref) flush_close_unref{};
  decltype(&sd_bus_set_method_call_timeout) set_method_call_timeout{};
  decltype(&sd_bus_get_property_trivial) get_property_trivial{};
  decltype(&sd_bus_error_free) error_free{};
  std::string error;  ///< why it cannot be used: the library or a function missing

  static const sd_bus_library& get() {
    // Never destroyed: a timedated client's detached thread may still be asking as the daemon exits.
    static const sd_bus_library* const loaded = [] {
      auto* made = new sd_bus_library;
      auto& l = *made;
      void* handle = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        const char* why = ::dlerror();
        l.error = std::string("libsystemd.so.0 cannot be loaded (") + (why != nullptr ? why : "unknown") +
                  "; the package libsystemd0 provides it)";
        return made;
      }
      const auto find = [&](auto& function, const char* name) {
        function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(::dlsym(handle, name));
        if (function == nullptr && l.error.empty()) {
          const char* why = ::dlerror();
          l.error =
              std::string("libsystemd.so.0 has no ") + name + " (" + (why != nullptr ? why : "unknown") + ")";
        }
      };
      find(l.open_system, "sd_bus_open_system");
      find(l.flush_close_unref, "sd_bus_flush_close_unref");
      find(l.set_method_call_timeout, "sd_bus_set_method_call_timeout");
      find(l.get_property_trivial, "sd_bus_get_property_trivial");
      find(l.error_free, "sd_bus_error_free");
      return made;
    }();
    return *loaded;
  }
};

}  // namespace

clock_reading ask_timedated() {
  clock_reading out;
  out.source = "timedated";
  out.max_error_us = -1;
  out.est_error_us = -1;
  const auto& sd = sd_bus_library::get();
  if (!sd.error.empty()) {
    out.error = "timedated: " + sd.error;
    return out;
  }
  sd_bus* raw = nullptr;
  if (const int r = sd.open_system(&raw); r < 0) {
    out.error = std::string("timedated: the system bus: ") + std::strerror(-r);
    return out;
  }
  const std::unique_ptr<sd_bus, decltype(&sd_bus_flush_close_unref)> bus(raw, sd.flush_close_unref);
  sd.set_method_call_timeout(bus.get(), 5'000'000);
  sd_bus_error error{};  // SD_BUS_ERROR_NULL, which is a C compound literal
  int value = 0;
  const int r = sd.get_property_trivial(bus.get(), "org.freedesktop.timedate1", "/org/freedesktop/timedate1",
                                        "org.freedesktop.timedate1", "NTPSynchronized", &error, 'b', &value);
  if (r < 0) {
    out.error = std::string("timedated: NTPSynchronized: ") +
                (error.message != nullptr ? error.message : std::strerror(-r));
    sd.error_free(&error);
    return out;
  }
  out.synchronised = value != 0;
  return out;
}

timedate_client::timedate_client(std::chrono::seconds every) : state_(std::make_shared<shared>()) {
  state_->latest.source = "timedated";
  state_->latest.max_error_us = -1;
  state_->latest.est_error_us = -1;
  state_->latest.error = "timedated: not answered yet";
  state_->latest.pending = true;
  std::thread([s = state_, every] {
    std::unique_lock lock(s->mutex);
    while (!s->stop) {
      lock.unlock();
      auto r = ask_timedated();
      lock.lock();
      s->latest = std::move(r);
      s->wake.wait_for(lock, every, [&] { return s->stop; });
    }
  }).detach();
}

timedate_client::~timedate_client() {
  {
    const std::lock_guard lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake.notify_all();  // a call under way ends within its timeout, on the thread's own
}

clock_reading timedate_client::latest() const {
  const std::lock_guard lock(state_->mutex);
  return state_->latest;
}

std::function<clock_reading()> clock_reader(clock_source source, std::chrono::seconds every) {
  if (source == clock_source::kernel) return read_kernel_clock;
  auto client = std::make_shared<std::unique_ptr<timedate_client>>();
  return [source, client, every] {
    if (source == clock_source::automatic && !*client) {
      auto r = read_kernel_clock();
      if (!r.denied) return r;
    }
    if (!*client) *client = std::make_unique<timedate_client>(every);
    return (*client)->latest();
  };
}

clock_watch::due clock_watch::check(std::chrono::steady_clock::time_point now,
                                    std::chrono::seconds fault_after) {
  last_ = read_();
  if (!last_.synchronised) return due::nothing;
  if (*last_.synchronised) {
    since_.reset();
    since_wall_.reset();
    return fault_id.empty() ? due::nothing : due::recovery;
  }
  if (!since_) {
    since_ = now;
    since_wall_ = clock::now();
  }
  if (fault_after.count() > 0 && fault_id.empty() && now - *since_ >= fault_after) return due::fault;
  return due::nothing;
}

std::chrono::seconds clock_watch::unsynchronised_for(std::chrono::steady_clock::time_point now) const {
  if (!since_) return std::chrono::seconds(0);
  return std::chrono::duration_cast<std::chrono::seconds>(now - *since_);
}

}  // namespace firegate
