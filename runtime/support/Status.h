// Error values of the runtime: Status (success or a message) and Result<T>.
#ifndef WEFT_RUNTIME_SUPPORT_STATUS_H
#define WEFT_RUNTIME_SUPPORT_STATUS_H

#include <optional>
#include <string>
#include <utility>

namespace weft::runtime {

/// Success, or a failure with a message for the user.
class [[nodiscard]] Status {
public:
  Status() = default;
  static Status error(std::string message) {
    Status s;
    s.failed = true;
    s.msg = std::move(message);
    return s;
  }
  bool ok() const { return !failed; }
  const std::string &message() const { return msg; }
  /// Returns this failure with `prefix` put before its message.
  Status withPrefix(const std::string &prefix) const {
    return ok() ? *this : error(prefix + msg);
  }

private:
  bool failed = false;
  std::string msg;
};

inline Status okStatus() { return Status(); }
inline Status errorStatus(std::string message) {
  return Status::error(std::move(message));
}

/// A value or the failure that prevented it.
template <typename T> class [[nodiscard]] Result {
public:
  Result(T value) : val(std::move(value)) {}
  Result(Status failure) : st(std::move(failure)) {}
  bool ok() const { return val.has_value(); }
  const Status &status() const { return st; }
  const std::string &message() const { return st.message(); }
  T &value() { return *val; }
  const T &value() const { return *val; }
  T &operator*() { return *val; }
  const T &operator*() const { return *val; }
  T *operator->() { return &*val; }
  const T *operator->() const { return &*val; }

private:
  std::optional<T> val;
  Status st;
};

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_STATUS_H
