#ifndef SERVER_GRPC_ARENA_MESSAGE_ALLOCATOR_H_
#define SERVER_GRPC_ARENA_MESSAGE_ALLOCATOR_H_

// ArenaMessageAllocator gives each call of a callback unary method its
// request and response on a protobuf arena. A reply with many small parts
// (EvaluateFlags: a map entry, a FlagResult, a FlagReason and a few strings
// per flag) otherwise costs hundreds of heap allocations and frees per call;
// on an arena they are bump allocations, freed at once when the call ends.
//
// The arena's first block lives in the holder itself, so an ordinary call
// allocates once (the holder); larger messages grow the arena with heap
// blocks, freed with it.
//
//   ArenaMessageAllocator<Req, Resp> allocator;   // Outlives the server.
//   service.SetMessageAllocatorFor_Method(&allocator);
//
// Thread-safe.
//
// ArenaMessage<T> is the same for a message a raw (ByteBuffer) method
// parses itself: one T on an arena whose first block is inline.

#include <cstddef>
#include <string>
#include <vector>

#include "google/protobuf/arena.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/message_allocator.h"
#include "grpcpp/support/slice.h"

namespace posthog_gateway {

namespace arena_internal {

inline google::protobuf::ArenaOptions FirstBlock(char* block, size_t bytes) {
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = bytes;
  return options;
}

}  // namespace arena_internal

template <typename T, size_t kFirstBlockBytes = 8 << 10>
class ArenaMessage final {
 public:
  ArenaMessage()
      : arena_(arena_internal::FirstBlock(first_block_, kFirstBlockBytes)),
        message_(google::protobuf::Arena::CreateMessage<T>(&arena_)) {}
  ArenaMessage(const ArenaMessage&) = delete;
  ArenaMessage& operator=(const ArenaMessage&) = delete;

  // ParseFrom parses the message's wire form; false when it is not one.
  bool ParseFrom(const grpc::ByteBuffer& bytes) {
    std::vector<grpc::Slice> slices;
    if (!bytes.Dump(&slices).ok()) return false;
    if (slices.size() == 1) {
      return message_->ParseFromArray(slices[0].begin(), static_cast<int>(slices[0].size()));
    }
    std::string joined;
    joined.reserve(bytes.Length());
    for (const grpc::Slice& slice : slices) {
      joined.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    return message_->ParseFromString(joined);
  }

  T& operator*() const { return *message_; }
  T* operator->() const { return message_; }

 private:
  alignas(std::max_align_t) char first_block_[kFirstBlockBytes];
  google::protobuf::Arena arena_;  // After first_block_: destroyed before it.
  T* const message_;
};

template <typename Request, typename Response, size_t kFirstBlockBytes = 16 << 10>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(arena_internal::FirstBlock(first_block_, kFirstBlockBytes)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }

    void Release() override { delete this; }

   private:
    alignas(std::max_align_t) char first_block_[kFirstBlockBytes];
    google::protobuf::Arena arena_;  // After first_block_: destroyed before it.
  };
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_ARENA_MESSAGE_ALLOCATOR_H_
