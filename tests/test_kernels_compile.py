"""The fused CUDA kernels compile, for float32 and float64, on a machine with no GPU.

CuPy compiles an ``ElementwiseKernel`` with NVRTC the first time it is called,
so a mistake in a kernel's C++ would otherwise surface only on a GPU machine.
Here each kernel's operation is set in a CUDA function laid out as CuPy lays
one out (inputs read into ``const T`` locals, outputs bound as ``T&``, ``T``
the element type, a semicolon after the operation) and compiled with NVRTC, which needs no driver and no device.
Whether the kernels compute the right thing is ``test_sim_kernels.py``'s job
(the same operation strings compiled for the host by the gpu-sim stand-in) and
``test_ops_kernels.py``'s, on a GPU. Runs where CuPy and NVRTC are installed; elsewhere it skips, saying so, unless
GPUPROP_REQUIRE_NVRTC is set (CI sets it where it installed NVRTC), which turns the skip into a failure.
"""

import os

import pytest

cupy = pytest.importorskip("cupy", reason="CuPy is not installed; the kernels are compiled where it is")

ARCHS = ["compute_75", "compute_90"]  # Turing, the oldest NVRTC 12.9 does not call deprecated, and Hopper
CTYPES = {"float32": "float", "float64": "double"}


def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:
        if os.environ.get("GPUPROP_REQUIRE_NVRTC"):  # CI installs NVRTC: there a missing one is a failure
            pytest.fail(f"NVRTC is not usable ({exc}) although GPUPROP_REQUIRE_NVRTC is set")
        pytest.skip(f"NVRTC is not usable here ({exc}); pip install nvidia-cuda-nvrtc-cu12 provides it")
    return nvrtc


def _kernels():
    from gpuprop.backend.kernels import elementwise_kernels

    return elementwise_kernels(cupy)


def _source(kernel, ctype):
    args, body = [], []
    for p in kernel.in_params:
        args.append(f"const T* _in_{p.name}")
        body.append(f"const T {p.name} = _in_{p.name}[i];")
    for p in kernel.out_params:
        args.append(f"T* _out_{p.name}")
        body.append(f"T& {p.name} = _out_{p.name}[i];")
    body.append(kernel.operation + ";")  # CuPy ends the operation with a semicolon too
    lines = "\n    ".join(body)
    return (f"typedef {ctype} T;\n"
            f'extern "C" __global__ void {kernel.name}({", ".join(args)}, long long n) {{\n'
            "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;\n"
            "       i += (long long)blockDim.x * gridDim.x) {\n"
            f"    {lines}\n  }}\n}}\n")


def test_every_kernel_is_typed_by_its_arrays():
    kernels = _kernels()
    assert set(kernels) == {"gpuprop_relu_backward", "gpuprop_sigmoid", "gpuprop_sigmoid_backward",
                            "gpuprop_tanh_backward", "gpuprop_adam_update", "gpuprop_gelu", "gpuprop_gelu_with_slope"}
    for k in kernels.values():  # the wrapper above assumes one type placeholder, T, for every parameter
        assert {p.ctype for p in k.in_params + k.out_params} == {"T"}, k.name


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", sorted(CTYPES))
@pytest.mark.parametrize("name", sorted(_kernels()))
def test_kernel_compiles(name, dtype, arch):
    nvrtc = _nvrtc()
    kernel = _kernels()[name]
    prog = nvrtc.createProgram(_source(kernel, CTYPES[dtype]), f"{name}.cu", (), ())
    try:
        nvrtc.compileProgram(prog, (f"-arch={arch}", "-std=c++17"))
    except Exception as exc:
        pytest.fail(f"{name} ({dtype}, {arch}) does not compile: {exc}\n{nvrtc.getProgramLog(prog)}")
    ptx = nvrtc.getPTX(prog).decode()
    assert f".entry {name}(" in ptx
    if dtype == "float64":  # T really was double: the kernel works on 64-bit floats
        assert ".f64" in ptx
