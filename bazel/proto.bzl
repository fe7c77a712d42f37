"""Protobuf and gRPC code generation with Debian's protoc and grpc_cpp_plugin.

Each call generates one .proto file; dependencies between generated libraries
are listed by hand, like any other C++ dependency.
"""

def _stem(src):
    return src[:-len(".proto")]

def cc_proto(name, src, proto_root, deps = [], proto_deps = [], grpc = False, visibility = None, testonly = False):
    """Generates C++ message code (and gRPC stubs when grpc = True) for src.

    Args:
      name: the cc_library holding the generated code.
      src: the .proto file, relative to this package (its import path).
      proto_root: the directory, relative to the execution root, that import
        paths are relative to ("proto" here, "external/<repo>" for an
        external repository).
      deps: cc_proto libraries of the files src imports.
      proto_deps: the .proto files src imports (labels).
      grpc: whether src defines services that need stubs.
      visibility: of the cc_library.
      testonly: of both targets.
    """
    stem = _stem(src)
    outs = [stem + ".pb.h", stem + ".pb.cc"]
    grpc_flags = ""
    if grpc:
        outs += [stem + ".grpc.pb.h", stem + ".grpc.pb.cc"]
        grpc_flags = "--grpc_out=$(GENDIR)/{root} --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin ".format(root = proto_root)
    native.genrule(
        name = name + "_gen",
        srcs = [src] + proto_deps,
        outs = outs,
        cmd = ("/usr/bin/protoc -I{root} -I/usr/include --cpp_out=$(GENDIR)/{root} " +
               grpc_flags + "{root}/{src}").format(root = proto_root, src = src),
        testonly = testonly,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        deps = deps + [
            "@posthog_gateway//third_party:grpc++",
            "@posthog_gateway//third_party:protobuf",
        ],
        visibility = visibility,
        testonly = testonly,
    )
