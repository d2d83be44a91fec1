"""Generate everything derived from the protos, or check that the committed copy is current.

    python scripts/generate.py          # rewrite generated/ and gateway/descriptor.pb
    python scripts/generate.py --check  # exit 1 if the committed output differs

Outputs:
- generated/saaslitellm/v1/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py: Python stubs (grpc_tools.protoc,
  because grpcio-tools ships no protoc-gen-grpc_python plugin for buf generate).
- gateway/descriptor.pb: the descriptor set Envoy's gRPC-JSON transcoder reads. It includes
  google/rpc/error_details.proto so that ErrorInfo/RetryInfo details survive transcoding.
- gateway/openapi.json: the OpenAPI document of the REST surface, from the descriptor set's HTTP
  rules and comments (scripts/openapi.py); Envoy serves it at /openapi.json, /docs and /redoc.
- gateway/envoy.yaml and gateway/envoy.compose.yaml: the Envoy template rendered for a manual
  local run (`envoy -c gateway/envoy.yaml` from the repository root) and for docker-compose.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openapi  # scripts/openapi.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
THIRD_PARTY = ROOT / "third_party" / "googleapis"
PACKAGE_DIR = Path("saaslitellm") / "v1"
DESCRIPTOR_EXTRA_INPUTS = ["google/rpc/error_details.proto"]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def protoc(*args: str) -> None:
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{THIRD_PARTY}", *args]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"protoc failed:\n{result.stderr}")


def generate(out: Path) -> None:
    """Write all outputs under `out` (a stand-in for the repository root)."""
    python_out = out / "generated"
    python_out.mkdir(parents=True, exist_ok=True)
    files = proto_files()
    protoc(f"--python_out={python_out}", f"--pyi_out={python_out}", f"--grpc_python_out={python_out}", *files)
    for package in (python_out / "saaslitellm", python_out / PACKAGE_DIR):
        (package / "__init__.py").write_text('"""Generated from protos/ by scripts/generate.py. Do not edit."""\n')
    (out / "gateway").mkdir(parents=True, exist_ok=True)
    protoc(
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={out / 'gateway' / 'descriptor.pb'}",
        *files,
        *DESCRIPTOR_EXTRA_INPUTS,
    )
    openapi.write(out / "gateway" / "descriptor.pb", out / "gateway" / "openapi.json")
    render_envoy(out)


def render_envoy(out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from devstack.envoy import EnvoyConfig, render

    local = EnvoyConfig(
        listen_port=8003,
        admin_port=9901,
        grpc_backends=(("127.0.0.1", 50051),),
        descriptor=Path("gateway/descriptor.pb"),
        docs_root=Path("gateway"),
    )
    compose = EnvoyConfig(
        listen_port=8003,
        admin_port=9901,
        listen_host="0.0.0.0",
        grpc_backends=(("server", 50051),),
        descriptor=Path("/etc/envoy/descriptor.pb"),
        docs_root=Path("/etc/envoy"),
    )
    header = "# Generated from gateway/envoy.template.yaml by scripts/generate.py. Do not edit.\n"
    (out / "gateway" / "envoy.yaml").write_text(header + render(local))
    (out / "gateway" / "envoy.compose.yaml").write_text(header + render(compose))


RENDERED = [
    Path("gateway/descriptor.pb"),
    Path("gateway/openapi.json"),
    Path("gateway/envoy.yaml"),
    Path("gateway/envoy.compose.yaml"),
]


def outputs(root: Path) -> set[Path]:
    generated = (root / "generated").rglob("*")
    found = {p.relative_to(root) for p in generated if p.is_file() and "__pycache__" not in p.parts}
    return found | set(RENDERED)


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        expected, committed = outputs(fresh), outputs(ROOT)
        drift = sorted(str(p) for p in expected ^ committed)
        drift += sorted(str(p) for p in expected & committed if not filecmp.cmp(fresh / p, ROOT / p, shallow=False))
    if drift:
        print("Generated code is out of date with protos/. Run `make generate` and commit:", *drift, sep="\n  ")
        return 1
    print("generated code matches protos/")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if committed output differs")
    if parser.parse_args().check:
        return check()
    shutil.rmtree(ROOT / "generated", ignore_errors=True)
    generate(ROOT)
    print("generated/, gateway/descriptor.pb, gateway/openapi.json and gateway/envoy*.yaml updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
