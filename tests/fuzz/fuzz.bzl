"""cc_fuzzer: one libFuzzer target and its corpus regression test.

cc_fuzzer(name = "x", deps = [...]) expects tests/fuzz/x_fuzzer.cc, which
defines LLVMFuzzerTestOneInput (and nothing else with external linkage that
libFuzzer does not know), and a seed corpus in tests/fuzz/corpus/x/. It makes:

- `x_corpus_test`: a cc_test (gcc, part of `bazel test //...` and of
  `--config=asan`) that feeds every file of the corpus to the fuzz function
  once, so every input that ever crashed stays fixed.
- `x_fuzzer`: the libFuzzer binary (tag `manual`: it only builds with clang,
  through tests/fuzz/run.sh, which uses its own Bazel output root and
  `--config=fuzz`).
"""

def cc_fuzzer(name, deps):
    src = name + "_fuzzer.cc"
    corpus = native.glob(["corpus/%s/**" % name])
    if not corpus:
        fail("cc_fuzzer %s: tests/fuzz/corpus/%s/ has no seed" % (name, name))
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = [src],
        args = ["tests/fuzz/corpus/" + name],
        data = corpus,
        deps = deps + [":corpus_main"],
    )
    native.cc_binary(
        name = name + "_fuzzer",
        testonly = True,
        srcs = [src],
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        deps = deps,
    )
