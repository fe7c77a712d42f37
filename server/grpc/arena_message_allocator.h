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

#include <cstddef>

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"

namespace posthog_gateway {

template <typename Request, typename Response, size_t kFirstBlockBytes = 16 << 10>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options(first_block_)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }

    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options(char* first_block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = first_block;
      options.initial_block_size = kFirstBlockBytes;
      return options;
    }

    alignas(std::max_align_t) char first_block_[kFirstBlockBytes];
    google::protobuf::Arena arena_;  // After first_block_: destroyed before it.
  };
};

}  // namespace posthog_gateway

#endif  // SERVER_GRPC_ARENA_MESSAGE_ALLOCATOR_H_
