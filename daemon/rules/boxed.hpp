#pragma once
// An optional value kept on the heap: what std::optional offers the alarm engine, at the size of a
// pointer. The engine keeps an optional open alarm for every rule of every device and a few more
// for every device (offline, communication quality, a shield, a test mode), nearly all of them
// empty nearly all the time: inline they took 248 bytes each (docs/performance.md).

#include <memory>
#include <optional>
#include <utility>

namespace firegate::rules {

template <class T>
class boxed {
 public:
  boxed() = default;
  boxed(std::nullopt_t) {}  // NOLINT: as std::optional converts
  boxed(const boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  boxed(boxed&&) noexcept = default;
  boxed& operator=(const boxed& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  boxed& operator=(boxed&&) noexcept = default;
  boxed& operator=(T v) {
    if (p_) {
      *p_ = std::move(v);
    } else {
      p_ = std::make_unique<T>(std::move(v));
    }
    return *this;
  }
  boxed& operator=(std::nullopt_t) {
    p_.reset();
    return *this;
  }
  explicit operator bool() const { return p_ != nullptr; }
  bool has_value() const { return p_ != nullptr; }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  void reset() { p_.reset(); }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace firegate::rules
