// The GB/T 26875.3 stream reader resynchronises instead of stalling (daemon/gb26875/frame.hpp): a
// published centre's frames behind one stray '@', behind a frame cut short, behind 5,000 '@', fed a
// byte at a time and mixed with garbage are all read, without a fault for a stray byte or a cut
// frame in front of them; a frame bad on its own is still a fault (to deny). That each frame is read
// as soon as its last byte is in is checked by fuzz_gb26875_stream.

#include "gb26875/frame.hpp"
#include "gb26875_published.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace firegate::gb26875;
namespace pub = firegate::test::gb_published;

namespace {

struct outcome {
  std::vector<frame> frames;
  std::vector<frame_fault> faults;
};

/// Feeds `bytes` in pieces of `piece` bytes (0: all at once) and reads after each.
outcome read_in_pieces(frame_reader& r, const std::vector<std::uint8_t>& bytes, std::size_t piece = 0) {
  outcome out;
  if (piece == 0) piece = bytes.size();
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    r.feed(std::span(bytes).subspan(at, std::min(piece, bytes.size() - at)));
    while (auto x = r.next()) {
      if (x->frame) out.frames.push_back(std::move(*x->frame));
      if (x->fault) out.faults.push_back(std::move(*x->fault));
    }
  }
  return out;
}

std::vector<std::uint8_t> join(std::initializer_list<std::vector<std::uint8_t>> parts) {
  std::vector<std::uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

/// The type flag of a frame's application data.
int type_of(const frame& f) {
  return f.data.empty() ? -1 : f.data[0];
}

}  // namespace

TEST_CASE("gb26875 stream: one stray @ before a read does not hold it - at once or a byte at a time") {
  // The candidate "@@" one byte early reads its length from the real frame's bytes 24-25 (00 03):
  // 768, which the old reader waited for.
  const auto bytes = join({{0x40}, pub::read_uitd_status});
  for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
    frame_reader r;
    const auto got = read_in_pieces(r, bytes, piece);
    INFO("pieces of " << piece);
    REQUIRE(got.frames.size() == 1);
    CHECK(type_of(got.frames[0]) == 81);
    CHECK(got.frames[0].serial == 1);
    CHECK(got.faults.empty());
    CHECK(r.skipped() == 1);
    CHECK(r.buffered() == 0);
  }
}

TEST_CASE("gb26875 stream: a frame cut short is dropped for the whole frames after it") {
  // The clock frame cut after 20 bytes: its length (read from the next frame's bytes) runs into the
  // two reads behind it, which are complete and valid.
  const std::vector<std::uint8_t> cut(pub::sync_clock.begin(), pub::sync_clock.begin() + 20);
  const auto bytes = join({cut, pub::read_uitd_version, pub::read_uitd_time});
  for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{33}}) {
    frame_reader r;
    const auto got = read_in_pieces(r, bytes, piece);
    INFO("pieces of " << piece);
    REQUIRE(got.frames.size() == 2);
    CHECK(type_of(got.frames[0]) == 85);
    CHECK(type_of(got.frames[1]) == 88);
    CHECK(got.faults.empty());
    CHECK(r.skipped() == 20);
  }
}

TEST_CASE("gb26875 stream: 5,000 @ then a read - the read is taken, the garbage is faults to rate-limit") {
  std::vector<std::uint8_t> bytes(5000, 0x40);
  bytes.insert(bytes.end(), pub::read_uitd_status.begin(), pub::read_uitd_status.end());
  frame_reader r;
  const auto got = read_in_pieces(r, bytes, 1460);  // TCP segments
  REQUIRE(got.frames.size() == 1);
  CHECK(type_of(got.frames[0]) == 81);
  // Each "@@" in the run reads a length of 0x4040: over the limit, a fault (the uplink limits the
  // denies it sends); none hides the frame.
  CHECK(got.faults.size() >= 4000);
  for (const auto& f : got.faults) CHECK(f.what == frame_fault::kind::too_long);
  CHECK(r.buffered() == 0);
}

TEST_CASE("gb26875 stream: frames interleaved with garbage in random pieces are all read") {
  std::mt19937 random(26875);
  const std::vector<std::vector<std::uint8_t>> frames{pub::read_uitd_status, pub::sync_clock,
                                                      pub::read_uitd_version, pub::read_uitd_time};
  for (int round = 0; round < 200; ++round) {
    std::vector<std::uint8_t> bytes;
    std::vector<int> want;
    for (int i = 0; i < 6; ++i) {
      // Garbage of the worst kind: start and end markers among random bytes, no whole frame.
      const auto n = random() % 40;
      for (unsigned k = 0; k < n; ++k) {
        const auto pick = random() % 4;
        bytes.push_back(pick == 0 ? 0x40 : pick == 1 ? 0x23 : static_cast<std::uint8_t>(random()));
      }
      const auto& f = frames[random() % frames.size()];
      bytes.insert(bytes.end(), f.begin(), f.end());
      want.push_back(f[27]);
    }
    frame_reader r;
    std::vector<int> types;
    for (std::size_t at = 0; at < bytes.size();) {
      const auto piece = std::min<std::size_t>(1 + random() % 50, bytes.size() - at);
      r.feed(std::span(bytes).subspan(at, piece));
      at += piece;
      while (auto x = r.next()) {
        if (x->frame) types.push_back(type_of(*x->frame));
      }
    }
    INFO("round " << round);
    REQUIRE(types == want);
  }
}

TEST_CASE("gb26875 stream: a candidate that cannot complete is dropped after a silence - not before") {
  // "@@" and a header claiming 500 bytes, then nothing: the reader waits (a slow line may still
  // bring them) until the uplink says the line went quiet.
  std::vector<std::uint8_t> head(pub::read_uitd_status.begin(), pub::read_uitd_status.begin() + 27);
  head[24] = 0xF4;
  head[25] = 0x01;  // 500
  frame_reader r;
  auto got = read_in_pieces(r, head);
  CHECK(got.frames.empty());
  CHECK(got.faults.empty());
  CHECK(r.buffered() == 27);
  CHECK(r.drop_incomplete() == 27);
  CHECK(r.skipped() == 27);
  got = read_in_pieces(r, pub::read_uitd_status);
  REQUIRE(got.frames.size() == 1);
  CHECK(got.faults.empty());
}

TEST_CASE("gb26875 stream: a frame that fails on its own is still denied - then the next is read") {
  // A bad checksum on a whole frame is a fault (answered with deny), and reading goes on from its
  // second byte, so a frame right behind it is read.
  auto bad = pub::read_uitd_version;
  bad[bad.size() - 3] ^= 0x5A;
  frame_reader r;
  const auto got = read_in_pieces(r, join({bad, pub::read_uitd_time}));
  REQUIRE(got.faults.size() == 1);
  CHECK(got.faults[0].what == frame_fault::kind::bad_checksum);
  CHECK(got.faults[0].serial == 1);
  REQUIRE(got.frames.size() == 1);
  CHECK(type_of(got.frames[0]) == 88);
}
