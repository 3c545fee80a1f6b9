// siamrec's exceptions: every failure is a siamrec::Error whose message names what and where
// (file:line:field for data, the key and the allowed values for configuration). The command line
// maps exit_code() to its exit status; the Python module maps the classes to Python exceptions.
#pragma once
#include <stdexcept>
#include <string>

namespace siamrec {

// Exit codes of the command line (documented in README.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,        // runtime failure (I/O, bad model file, ...)
  kExitUsage = 2,        // bad command line or configuration
  kExitData = 3,         // malformed or missing input data
  kExitMissingData = 4,  // a dataset is not available locally
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, int exit_code = kExitError) : std::runtime_error(msg), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Malformed input data: file, line and field are part of the message.
class DataError : public Error {
 public:
  explicit DataError(const std::string& msg) : Error(msg, kExitData) {}
};

// Bad configuration, argument or id: the message names the key and the allowed values.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& msg) : Error(msg, kExitUsage) {}
};

// A registered dataset is not available locally (the message says where it looked and how to fix it).
class MissingDataError : public Error {
 public:
  explicit MissingDataError(const std::string& msg) : Error(msg, kExitMissingData) {}
};

}  // namespace siamrec
