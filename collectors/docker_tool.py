"""A few Docker chores from a release spec, for setup scripts and people:

    python -m collectors.docker_tool release.toml status
    python -m collectors.docker_tool release.toml scale v1 2
    python -m collectors.docker_tool release.toml cleanup     # every container releasedeck started

It drives the same `DockerPlatform` the dashboard uses, so the setup and the release agree on
names, labels and ports. Errors print one line and exit 1 (2 for a bad spec or usage).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from collectors.docker_platform import DockerPlatform, DockerPlatformError
from strategies.spec import SpecError, load_spec


async def _run(platform: DockerPlatform, args: argparse.Namespace, versions: list[str]) -> int:
    try:
        if args.command == "scale":
            await platform.scale(args.version, args.replicas)
            print(f"{args.version}: {args.replicas} instance(s)")
        elif args.command == "cleanup":
            print(f"removed {await platform.cleanup()} container(s)")
        else:
            snap = await platform.snapshot(versions, time.time())
            if snap.error:
                raise DockerPlatformError(snap.error)
            for name, status in snap.versions.items():
                print(f"{name}: {status.ready}/{status.total} ready {status.image}")
                for inst in status.instances:
                    print(f"  {inst.id}  {inst.state}  {inst.address}  restarts={inst.restarts}")
        return 0
    except DockerPlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await platform.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.docker_tool")
    parser.add_argument("spec", help="release.toml with [platform] kind = \"docker\"")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="containers per version")
    scale = sub.add_parser("scale", help="start/stop containers of one version")
    scale.add_argument("version")
    scale.add_argument("replicas", type=int)
    sub.add_parser("cleanup", help="remove every container releasedeck started for the service")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    if spec.platform.kind != "docker":
        print(f"{args.spec}: platform.kind: must be 'docker' here, got {spec.platform.kind!r}",
              file=sys.stderr)
        return 2
    try:
        platform = DockerPlatform.from_spec(spec)
    except DockerPlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(platform, args, list(spec.versions)))


if __name__ == "__main__":
    sys.exit(main())
