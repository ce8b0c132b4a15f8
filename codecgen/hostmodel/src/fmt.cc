#include <cstdio>
#include <string>

#include "fmt/format.h"

namespace fmt {
namespace detail {
namespace {

struct Spec {
  bool alternate = false;
  bool zero = false;
  std::size_t width = 0;
  char type = '\0';
};

Spec parseSpec(std::string_view text) {
  Spec spec;
  std::size_t i = 0;
  if (i < text.size() && text[i] == '#') {
    spec.alternate = true;
    ++i;
  }
  if (i < text.size() && text[i] == '0') {
    spec.zero = true;
    ++i;
  }
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    spec.width = spec.width * 10 + static_cast<std::size_t>(text[i] - '0');
    ++i;
  }
  if (i < text.size()) {
    spec.type = text[i++];
  }
  if (i != text.size() || (spec.type != '\0' && std::string_view("dxXobsc").find(spec.type) ==
                                                    std::string_view::npos)) {
    throw format_error("host model: unsupported format spec '" + std::string(text) + "'");
  }
  return spec;
}

std::string unsignedDigits(unsigned long long value, char type, bool alternate) {
  const int base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : type == 'b' ? 2 : 10;
  const char* digits = type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[value % static_cast<unsigned>(base)]);
    value /= static_cast<unsigned>(base);
  } while (value != 0);
  if (alternate && base != 10) {
    out.insert(0, type == 'o' ? "0" : type == 'b' ? "0b" : type == 'X' ? "0X" : "0x");
  }
  return out;
}

std::string render(const Arg& arg, const Spec& spec) {
  std::string sign;
  std::string body;
  switch (arg.kind) {
  case Arg::Kind::Signed:
  case Arg::Kind::Unsigned:
  case Arg::Kind::Char:
  case Arg::Kind::Bool: {
    if (arg.kind == Arg::Kind::Char && (spec.type == '\0' || spec.type == 'c')) {
      body = std::string(1, static_cast<char>(arg.i));
      break;
    }
    if (arg.kind == Arg::Kind::Bool && (spec.type == '\0' || spec.type == 's')) {
      body = arg.u != 0 ? "true" : "false";
      break;
    }
    if (spec.type == 's') {
      throw format_error("host model: 's' spec on an integer");
    }
    unsigned long long magnitude = arg.u;
    if (arg.kind != Arg::Kind::Unsigned && arg.kind != Arg::Kind::Bool) {
      magnitude = arg.i < 0 ? 0ULL - static_cast<unsigned long long>(arg.i)
                            : static_cast<unsigned long long>(arg.i);
      sign = arg.i < 0 ? "-" : "";
    }
    if (spec.type == 'c') {
      body = std::string(1, static_cast<char>(magnitude));
      sign.clear();
      break;
    }
    body = unsignedDigits(magnitude, spec.type, spec.alternate);
    break;
  }
  case Arg::Kind::Double: {
    if (spec.type != '\0') {
      throw format_error("host model: only {} is supported for floating point");
    }
    char text[64];
    std::snprintf(text, sizeof(text), "%g", arg.d);
    body = text;
    break;
  }
  case Arg::Kind::String:
    if (spec.type != '\0' && spec.type != 's') {
      throw format_error("host model: numeric spec on a string");
    }
    body = std::string(arg.s);
    break;
  case Arg::Kind::Pointer: {
    char text[32];
    std::snprintf(text, sizeof(text), "%p", arg.p);
    body = text;
    break;
  }
  case Arg::Kind::None:
    throw format_error("argument not found");
  }
  const std::size_t used = sign.size() + body.size();
  if (used < spec.width) {
    const bool numeric = arg.kind != Arg::Kind::String;
    if (spec.zero && numeric) {
      const bool prefixed = spec.alternate && std::string_view("xXbo").find(spec.type) !=
                                                  std::string_view::npos;
      const std::size_t prefix = !prefixed ? 0 : spec.type == 'o' ? 1 : 2;
      body.insert(prefix, spec.width - used, '0');
    } else if (numeric) {
      sign.insert(0, spec.width - used, ' ');
    } else {
      body.append(spec.width - used, ' ');
    }
  }
  return sign + body;
}

} // namespace

std::string vformat(std::string_view format, const Arg* args, std::size_t count) {
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      throw format_error("unmatched '}' in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const std::size_t close = format.find('}', i);
    if (close == std::string_view::npos) {
      throw format_error("invalid format string: missing '}'");
    }
    std::string_view field = format.substr(i + 1, close - i - 1);
    if (!field.empty() && field[0] != ':') {
      throw format_error("host model: positional or named fields are not supported");
    }
    if (next >= count) {
      throw format_error("argument not found");
    }
    out += render(args[next++], parseSpec(field.empty() ? field : field.substr(1)));
    i = close;
  }
  return out;
}

} // namespace detail
} // namespace fmt
