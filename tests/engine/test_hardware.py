"""describe_cpu reads the model and the vector extensions of the first processor."""

from sureid.engine.hardware import describe_cpu

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse avx avx2 avx512f avx512_vnni amx_tile
processor\t: 1
model name\t: other
flags\t\t: fpu
"""


def test_model_and_extensions_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    got = describe_cpu(path)
    assert got["model"] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert got["extensions"] == ["avx2", "avx512f", "avx512_vnni", "amx_tile"]
    assert got["cores"] >= 1 and got["torch_threads"] >= 1


def test_avx2_only_and_unreadable(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("model name : AMD EPYC 7B12\nflags : sse avx avx2 fma\n")
    assert describe_cpu(path)["extensions"] == ["avx2"]
    missing = describe_cpu(tmp_path / "absent")
    assert missing["extensions"] is None and isinstance(missing["model"], str)


def test_format_cpu_and_the_benchmark_line():
    from sureid.engine import cpu_line, format_cpu

    assert format_cpu({"model": "Xeon", "extensions": ["avx2", "avx512_vnni"]}) == \
        "Xeon (avx2, avx512_vnni)"
    assert format_cpu({"model": "M2", "extensions": None}) == "M2 (extensions unknown)"
    cpu = describe_cpu()
    assert cpu_line() == f"CPU {format_cpu(cpu)}, {cpu['cores']} logical cores"
