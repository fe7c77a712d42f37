#!/usr/bin/env python3
"""Calls the gateway's UserService.GetCurrentUser from Python.

Stubs are generated from the .proto files alone:
  protoc -I proto --python_out=OUT --grpc_python_out=OUT \
      --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
      proto/posthog/v1/*.proto
then, with OUT on PYTHONPATH:
  /usr/bin/python3 client/examples/get_current_user.py localhost:50051 [project]
"""

import sys

import grpc
from google.protobuf import json_format

from posthog.v1 import user_pb2, user_pb2_grpc


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"
    project = sys.argv[2] if len(sys.argv) > 2 else ""
    with grpc.insecure_channel(target) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        try:
            response = stub.GetCurrentUser(
                user_pb2.GetCurrentUserRequest(project=project), timeout=10)
        except grpc.RpcError as error:
            print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    user = response.user
    print(f"{user.first_name} {user.last_name} <{user.email}>, "
          f"project {user.team.id} \"{user.team.name}\", "
          f"organization \"{user.organization.name}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
