#include "launcher/commands/cli_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

namespace dptrain::launcher {

namespace {

// `value` as people write it: 1, 0.5, 1e+06.
std::string plain(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// "dptrain train", "dptrain bench allreduce": the subcommands given before the parse failed.
std::string command_path(CLI::App& app) {
  std::string path = "dptrain";
  CLI::App* at = &app;
  for (;;) {
    const std::vector<CLI::App*> chosen = at->get_subcommands();
    if (chosen.empty()) return path;
    at = chosen.front();
    path += " " + at->get_name();
  }
}

// Checks `text` as a number with `fits`; `rule` says what fits ("must be at least 1").
CLI::Validator number_check(std::function<bool(double)> fits, const std::string& rule, const std::string& brief) {
  return CLI::Validator(
      [fits, rule](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value)) {
          return "expected a number, got '" + text + "'";
        }
        if (!fits(value)) return rule + ", got " + text;
        return std::string();
      },
      brief);
}

}  // namespace

CLI::Validator in_range(double min, double max) {
  const std::string rule = std::isinf(max) ? "must be at least " + plain(min)
                                           : "must be between " + plain(min) + " and " + plain(max);
  return number_check([min, max](double v) { return v >= min && v <= max; }, rule,
                      std::isinf(max) ? ">= " + plain(min) : "[" + plain(min) + ", " + plain(max) + "]");
}

CLI::Validator above(double bound, double max) {
  const std::string rule = "must be greater than " + plain(bound) + (std::isinf(max) ? "" : " and at most " + plain(max));
  return number_check([bound, max](double v) { return v > bound && v <= max; }, rule,
                      "(" + plain(bound) + ", " + plain(max) + "]");
}

CLI::Validator seconds(Zero zero) {
  if (zero == Zero::Allowed) return in_range(0, kMaxOptionSeconds);
  return above(0, kMaxOptionSeconds);
}

int report_parse_error(CLI::App& app, const CLI::ParseError& error) {
  if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(error);
  const std::string command = command_path(app);
  std::fprintf(stderr, "%s: error: %s\nrun '%s --help' for the options\n", command.c_str(), error.what(),
               command.c_str());
  return kExitBadCommandLine;
}

}  // namespace dptrain::launcher
