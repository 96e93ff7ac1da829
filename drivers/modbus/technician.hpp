#pragma once
// What firegatectl asks of a Modbus line besides the polling: raw registers read or written, and a
// scan that says which shipped profile a unit looks like. Written over "send one PDU to a unit", so
// the same code runs through the daemon's bus (between its polls) and over a transport of
// firegatectl's own when the daemon is stopped.

#include "../driver.hpp"
#include "profile.hpp"

#include <chrono>
#include <compare>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace firegate::modbus {

/// The response PDU (its framing checked by the transport) or the error, and the time it took.
using pdu_handler = std::function<void(result<std::vector<std::uint8_t>>, std::chrono::microseconds)>;
/// Sends one request PDU to `unit`; calls `done` once.
using pdu_sender = std::function<void(std::uint8_t unit, std::vector<std::uint8_t> pdu, pdu_handler done)>;

/// "holding", "input", "coil", "discrete"; nullopt for anything else.
std::optional<register_table> parse_table(std::string_view name);

/// Checks the request (unit 1–247, table, quantity limits, a writable table), sends it and decodes
/// the answer. `done` is called once.
void transact_registers(const pdu_sender& send, const register_request& request,
                        std::function<void(register_reply)> done);

/// Probes `unit` with the reads of every profile in `library`, each distinct read once; a unit that
/// times out on the first read does not answer. `done` gets the profiles that fit.
void identify_unit(const pdu_sender& send, std::shared_ptr<const profile_library> library, std::uint8_t unit,
                   std::function<void(unit_identity)> done);

// ---- pure parts, for tests ----

struct read_key {
  function_code function{function_code::read_holding_registers};
  std::uint16_t address{0};
  std::uint16_t count{0};
  auto operator<=>(const read_key&) const = default;
};

/// The distinct reads that tell the profiles apart: each profile's reads without gaps.
std::vector<read_key> identification_reads(const profile_library& library);

/// The profiles that fit what a unit answered (`answers`: each read answered with values; bits as
/// 0 or 1): every one of its reads answered, and every labelled point holding one of its labels.
/// Best first: the most labelled points confirmed.
std::vector<std::string> matching_profiles(const profile_library& library,
                                           const std::map<read_key, std::vector<std::uint16_t>>& answers);

/// What scan says of a unit that answered, and how sure it is: "looks like SD-1" when one profile
/// fits and a value it names confirms it (its state reads 0, normal); "may be X" when one fits but
/// nothing read could confirm it (a generic meter answers any holding read); "could be A, B or C"
/// with the register that tells them apart when several fit; or that none fits.
std::string identity_text(const profile_library& library,
                          const std::map<read_key, std::vector<std::uint16_t>>& answers,
                          const std::vector<std::string>& profiles, std::size_t reads);

}  // namespace firegate::modbus
