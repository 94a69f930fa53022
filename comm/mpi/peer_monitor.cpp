#include "comm/mpi/peer_monitor.h"

#include <pthread.h>

#include <algorithm>
#include <cstdio>

#include "comm/mpi/mpi_communicator.h"
#include "runtime/core/errors.h"
#include "runtime/report/metrics.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;

// The tag of every heartbeat message (the monitor's duplicate carries nothing else).
constexpr int kTag = 0x4842;
// Message kinds, the first word of every message.
constexpr uint64_t kBeat = 1;  // "still here" (from rank 0: with the ranks it found lost)
constexpr uint64_t kBye = 2;   // "stopping on purpose: expect nothing more from me"

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof(text), "MPI error %d", code);
  return text;
}

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", seconds);
  return text;
}

}  // namespace

struct PeerMonitor::Link {
  size_t rank = 0;
  Clock::time_point last_heard;  // when its last message arrived (or monitoring started)
  bool lost = false;             // declared lost: nothing more is sent to it
  bool said_bye = false;         // it stopped monitoring on purpose: its silence means nothing
  bool bye_sent = false;
  MPI_Request send = MPI_REQUEST_NULL;
  std::vector<uint64_t> send_buffer;  // stays untouched while `send` is in flight
};

PeerMonitor::PeerMonitor(MPI_Comm comm, double silence_seconds, std::vector<WorkerInfo> workers, Deadline deadline)
    : silence_(silence_seconds), period_(std::min(1.0, silence_seconds / 4)), workers_(std::move(workers)) {
  if (silence_seconds <= 0) throw CommError("heartbeats need a silence above 0 seconds");
  MPI_Request request;
  DPTRAIN_MPI_CHECK(MPI_Comm_idup(comm, &comm_, &request));
  int size = 1;
  DPTRAIN_MPI_CHECK(MPI_Comm_size(comm, &size));
  wait_request(&request, deadline, static_cast<size_t>(size), "start of heartbeats (duplicating the communicator)");
  DPTRAIN_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  int rank = 0;
  DPTRAIN_MPI_CHECK(MPI_Comm_rank(comm_, &rank));
  rank_ = static_cast<size_t>(rank);
  size_ = static_cast<size_t>(size);
  if (workers_.size() != size_) workers_.assign(size_, WorkerInfo{});
  for (size_t r = 0; r < size_; ++r) workers_[r].rank = static_cast<uint32_t>(r);

  const size_t words = (size_ + 63) / 64;
  lost_bits_.assign(words, 0);
  recv_buffer_.assign(1 + words, 0);
  const auto now = Clock::now();
  for (size_t r = 0; r < size_; ++r) {
    if (r == rank_ || (rank_ != 0 && r != 0)) continue;
    Link link;
    link.rank = r;
    link.last_heard = now;
    link.send_buffer.assign(1 + words, 0);
    links_.push_back(std::move(link));
  }
  thread_ = std::thread([this] { run(); });
}

PeerMonitor::~PeerMonitor() { stop(stop_bound()); }

Deadline PeerMonitor::stop_bound() const {
  return std::chrono::duration_cast<Deadline>(std::chrono::duration<double>(silence_ + 1.0));
}

void PeerMonitor::stop(Deadline bound) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_ = true;
    stop_bound_ = bound;
  }
  wake_.notify_all();
  thread_.join();
  int finalized = 0;
  MPI_Finalized(&finalized);
  // With a heartbeat possibly still in flight the duplicate stays: a later communicator must never
  // receive this one's messages.
  if (quiet_ && !finalized) MPI_Comm_free(&comm_);
}

std::vector<LostPeer> PeerMonitor::lost() const {
  std::lock_guard<std::mutex> lock(lost_mutex_);
  return lost_;
}

void PeerMonitor::check(const std::string& what) const {
  if (!any_lost()) return;
  std::lock_guard<std::mutex> lock(lost_mutex_);
  if (thread_error_) std::rethrow_exception(thread_error_);
  if (lost_.empty()) {
    throw CommError(mpi_where() + ": heartbeats failed (" + failure_ + ") while waiting in " + what);
  }
  std::string message;
  std::vector<size_t> ranks;
  for (const LostPeer& peer : lost_) {
    if (!message.empty()) message += "; ";
    message += "worker rank " + std::to_string(peer.rank);
    if (peer.info.pid != 0) {
      message += " (pid " + std::to_string(peer.info.pid) + " on host " + std::string(peer.info.host) + ")";
    }
    message += " stopped answering: " + peer.reason + " (killed, or its node failed)";
    ranks.push_back(peer.rank);
  }
  throw PeerLostError(message + "; " + mpi_where() + " was waiting in " + what, std::move(ranks));
}

// Rank 0's links are ranks 1, 2, ... in order; the others have the one link to rank 0.
PeerMonitor::Link* PeerMonitor::link_of(size_t rank) {
  if (rank_ == 0) return rank >= 1 && rank <= links_.size() ? &links_[rank - 1] : nullptr;
  return rank == 0 && !links_.empty() ? &links_[0] : nullptr;
}

void PeerMonitor::run() {
  pthread_setname_np(pthread_self(), "dptrain-beats");  // as `top -H` shows it
  try {
    DPTRAIN_MPI_CHECK(MPI_Irecv(recv_buffer_.data(), static_cast<int>(recv_buffer_.size()), MPI_UINT64_T,
                                MPI_ANY_SOURCE, kTag, comm_, &recv_));
    const auto period = std::chrono::duration<double>(period_);
    const auto tick =
        std::chrono::duration_cast<Clock::duration>(std::min(period / 4, std::chrono::duration<double>(0.1)));
    auto next_beat = Clock::now();
    std::unique_lock<std::mutex> lock(wake_mutex_);
    while (!stopping_) {
      lock.unlock();
      receive();
      watch_silence();
      if (Clock::now() >= next_beat || relay_now_) {
        beat_all(kBeat);
        relay_now_ = false;
        next_beat = Clock::now() + std::chrono::duration_cast<Clock::duration>(period);
      }
      lock.lock();
      wake_.wait_for(lock, tick, [this] { return stopping_; });
    }
    const auto until = Clock::now() + stop_bound_;
    lock.unlock();
    quiet_ = say_goodbye(until);
  } catch (const CommError& e) {
    std::lock_guard<std::mutex> lock(lost_mutex_);
    failure_ = e.what();
    any_lost_.store(true, std::memory_order_release);
  } catch (...) {  // anything else is handed to the next check() on a waiting thread, never out of this one
    std::lock_guard<std::mutex> lock(lost_mutex_);
    thread_error_ = std::current_exception();
    any_lost_.store(true, std::memory_order_release);
  }
}

void PeerMonitor::beat_all(uint64_t kind) {
  for (Link& link : links_) {
    if (!link.lost && !link.said_bye) send_to(link, kind);
  }
}

// Sends `kind` with the lost ranks to `link` unless its previous message is still in flight.
// A peer that cannot be sent to counts as lost.
bool PeerMonitor::send_to(Link& link, uint64_t kind) {
  int code = MPI_SUCCESS;
  if (link.send != MPI_REQUEST_NULL) {
    int done = 0;
    code = MPI_Test(&link.send, &done, MPI_STATUS_IGNORE);
    if (code == MPI_SUCCESS && !done) return false;
  }
  if (code == MPI_SUCCESS) {
    link.send_buffer[0] = kind;
    std::copy(lost_bits_.begin(), lost_bits_.end(), link.send_buffer.begin() + 1);
    code = MPI_Isend(link.send_buffer.data(), static_cast<int>(link.send_buffer.size()), MPI_UINT64_T,
                     static_cast<int>(link.rank), kTag, comm_, &link.send);
  }
  if (code != MPI_SUCCESS) {
    link.send = MPI_REQUEST_NULL;
    link.lost = true;
    mark_lost(link.rank, "a heartbeat to it failed: " + mpi_error_text(code));
    return false;
  }
  return true;
}

void PeerMonitor::receive() {
  while (true) {
    int done = 0;
    MPI_Status status;
    DPTRAIN_MPI_CHECK(MPI_Test(&recv_, &done, &status));
    if (!done) return;
    const size_t source = static_cast<size_t>(status.MPI_SOURCE);
    if (Link* link = link_of(source)) {
      link->last_heard = Clock::now();
      if (recv_buffer_[0] == kBye) link->said_bye = true;
    }
    if (rank_ != 0 && source == 0) {
      // Rank 0's list of lost ranks: learn the new ones.
      for (size_t w = 0; w < lost_bits_.size(); ++w) {
        const uint64_t fresh = recv_buffer_[1 + w] & ~lost_bits_[w];
        for (size_t b = 0; b < 64; ++b) {
          if (fresh & (uint64_t{1} << b)) {
            mark_lost(64 * w + b, "rank 0 heard no heartbeat from it for " + format_seconds(silence_));
          }
        }
      }
    }
    DPTRAIN_MPI_CHECK(MPI_Irecv(recv_buffer_.data(), static_cast<int>(recv_buffer_.size()), MPI_UINT64_T,
                                MPI_ANY_SOURCE, kTag, comm_, &recv_));
  }
}

void PeerMonitor::watch_silence() {
  for (Link& link : links_) {
    if (link.lost || link.said_bye) continue;
    const double silent = seconds_since(link.last_heard);
    if (silent > silence_) {
      link.lost = true;
      mark_lost(link.rank, "no heartbeat for " + format_seconds(silent));
    }
  }
}

void PeerMonitor::mark_lost(size_t rank, const std::string& reason) {
  if (rank >= size_) return;
  lost_bits_[rank / 64] |= uint64_t{1} << (rank % 64);
  LostPeer peer;
  peer.rank = rank;
  peer.info = workers_[rank];
  peer.reason = reason;
  {
    std::lock_guard<std::mutex> lock(lost_mutex_);
    lost_.push_back(peer);
  }
  any_lost_.store(true, std::memory_order_release);
  if (rank_ == 0) relay_now_ = true;
}

// Sends goodbye to every peer not lost, and takes in their messages until each of them has said
// goodbye too (nothing is then in flight between them) or `until` passes. True when all went quiet.
bool PeerMonitor::say_goodbye(Clock::time_point until) {
  const auto pause = std::chrono::milliseconds(1);
  while (true) {
    receive();
    bool done = true;   // every peer still there has said goodbye and taken this rank's
    bool quiet = true;  // and no peer is lost (a lost one might still send)
    for (Link& link : links_) {
      if (link.lost) {
        quiet = false;
        continue;
      }
      if (!link.bye_sent) link.bye_sent = send_to(link, kBye);
      if (!link.bye_sent || !link.said_bye) done = false;
      if (link.send != MPI_REQUEST_NULL) {
        int sent = 0;
        DPTRAIN_MPI_CHECK(MPI_Test(&link.send, &sent, MPI_STATUS_IGNORE));
        if (!sent) done = false;
      }
    }
    if (done || Clock::now() >= until) {
      // The receive posted last is taken back (cancelling a receive completes at once).
      DPTRAIN_MPI_CHECK(MPI_Cancel(&recv_));
      const auto cancel_until = Clock::now() + std::chrono::seconds(1);
      int cancelled = 0;
      while (!cancelled && Clock::now() < cancel_until) {
        DPTRAIN_MPI_CHECK(MPI_Test(&recv_, &cancelled, MPI_STATUS_IGNORE));
        if (!cancelled) std::this_thread::sleep_for(pause);
      }
      return done && quiet && cancelled;
    }
    std::this_thread::sleep_for(pause);
  }
}

}  // namespace dptrain
