// libFuzzer target: the GB/T 26875.3 stream reader resynchronises. The input is a script: runs of
// garbage (any bytes, markers included) and whole frames (made from the input's bytes), fed in
// pieces of sizes the input picks. Checked:
// - every frame put in the stream is read, in order, as soon as its last byte has been fed (garbage
//   that spelled out a whole frame may add one), unless such a frame overlaps another: then the
//   stream really is ambiguous;
// - nothing is left waiting once the stream has ended and the line went quiet (drop_incomplete);
// - every byte is accounted for: in a frame read, or skipped.

#include "fuzz_input.hpp"
#include "gb26875/frame.hpp"
#include "gb26875_ambiguity.hpp"

#include <cstdio>
#include <cstdlib>

using namespace firegate::gb26875;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_gb26875_stream: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  firegate::fuzz::cursor in{{data, size}};
  std::vector<std::uint8_t> stream;
  std::vector<std::vector<std::uint8_t>> put;  // the frames, encoded
  std::vector<std::size_t> ends;               // where each frame put ends in the stream
  std::vector<std::size_t> pieces;
  while (!in.done() && stream.size() < 16384) {
    const auto op = in.next();
    if (op & 1) {
      // A frame: command from the op, serial and data from the input.
      frame f;
      f.command = (op >> 1) % 3 == 0   ? command::request
                  : (op >> 1) % 3 == 1 ? command::control
                                       : command::send_data;
      f.serial = static_cast<std::uint16_t>(in.next() | (in.next() << 8));
      const auto text = in.take(in.next() % 64);
      f.data.assign(text.begin(), text.end());
      put.push_back(encode(f));
      stream.insert(stream.end(), put.back().begin(), put.back().end());
      ends.push_back(stream.size());
    } else {
      const auto junk = in.take(op >> 1);
      stream.insert(stream.end(), junk.begin(), junk.end());
    }
    pieces.push_back(1 + in.next() % 97u);
  }

  frame_reader reader;
  const bool ambiguous = firegate::fuzz::gb26875_ambiguous(stream);
  std::size_t want = 0;  // frames put that were read, in order
  std::vector<std::vector<std::uint8_t>> got;
  bool well_formed_fault = false;
  std::size_t taken_bytes = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; at < stream.size(); ++i) {
    const auto n = std::min(pieces.empty() ? stream.size() : pieces[i % pieces.size()], stream.size() - at);
    reader.feed(std::span(stream).subspan(at, n));
    at += n;
    while (auto r = reader.next()) {
      if (r->frame.has_value() == r->fault.has_value()) fail("a result is not exactly a frame or a fault");
      if (r->frame) {
        got.push_back(encode(*r->frame));
        taken_bytes += got.back().size();
        if (want < put.size() && got.back() == put[want]) ++want;
      } else if (r->fault->what == frame_fault::kind::unknown_command) {
        well_formed_fault = true;  // garbage that spelled a whole frame, passed whole
      }
    }
    // Each frame put is read as soon as its last byte is in: nothing holds it.
    if (!ambiguous) {
      for (std::size_t k = want; k < put.size() && ends[k] <= at; ++k)
        fail("a whole frame put was not read at once");
    }
  }
  reader.drop_incomplete();
  if (reader.buffered() != 0) fail("bytes left after drop_incomplete");
  if (reader.next()) fail("a result after everything was dropped");

  // Every byte: in a frame read, or skipped (or in a well-formed frame passed with a fault).
  if (!well_formed_fault && taken_bytes + reader.skipped() != stream.size())
    fail("bytes neither read in a frame nor skipped");

  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;  // to see what an input does
  if (verbose) {
    std::fprintf(stderr, "stream %zu bytes, %zu frames put, %zu read, skipped %llu\n", stream.size(),
                 put.size(), got.size(), static_cast<unsigned long long>(reader.skipped()));
    for (auto b : stream) std::fprintf(stderr, "%02X ", b);
    std::fprintf(stderr, "\npieces:");
    for (auto p : pieces) std::fprintf(stderr, " %zu", p);
    std::fprintf(stderr, "\n");
    for (const auto& f : put) std::fprintf(stderr, "put %zu bytes serial %02X%02X\n", f.size(), f[3], f[2]);
    for (const auto& f : got) std::fprintf(stderr, "got %zu bytes serial %02X%02X\n", f.size(), f[3], f[2]);
  }
  // Every frame put is read, in order; garbage that spelled out a whole frame of its own may add
  // one. Unless such a frame overlaps another: then which is read depends on the cutting.
  if (!ambiguous && want != put.size()) fail("a frame put in the stream was not read");
  return 0;
}
