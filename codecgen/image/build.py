"""Drive the Docker engine for ``codecgen image``: preflight, build, tag, extract, containers.

Everything goes through the docker SDK's low-level ``APIClient``.  docker-py 7
has no switch for BuildKit, which the generated Dockerfile needs (``RUN
--mount=type=cache``); :class:`EngineClient` adds the engine API's
``version=2`` build parameter, and the build itself is still
``APIClient.build(..., decode=True)``.

Exit codes used by the CLI: 0 success, 1 the build failed, 2 preflight or user error.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlparse

import docker
import docker.errors
import requests.exceptions

from codecgen.errors import UserError
from codecgen.image.progress import BuildMonitor, Failure, ProgressPrinter

__all__ = ["EngineClient", "PreflightError", "BuildResult", "Stage", "DockerfileInfo",
           "engine_url", "connect", "parse_dockerfile", "registry_of", "registry_unreachable",
           "preflight", "check_preflight", "context_tar", "build", "tag_image", "extract_file",
           "extract_from_stage", "create_container", "start_container", "container",
           "container_logs", "container_running", "wait_for_log", "remove_container",
           "cleanup_containers", "fail", "OWNER_LABEL", "EXIT_OK", "EXIT_BUILD_FAILED",
           "EXIT_USAGE"]

EXIT_OK, EXIT_BUILD_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_ENGINE = "unix:///var/run/docker.sock"
MIN_BUILDKIT_API = (1, 39)      # Docker 18.09, the first engine with BuildKit
OWNER_LABEL = "io.codecgen.owner"
DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


class PreflightError(UserError):
    """Preflight found problems; ``problems`` has one line each."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class EngineClient(docker.APIClient):
    """``docker.APIClient`` whose ``build()`` can ask the engine for BuildKit."""

    buildkit = False

    def _post(self, url, **kwargs):  # the SDK's one hook for every POST
        if self.buildkit and url.endswith("/build"):
            params = dict(kwargs.get("params") or {})
            params["version"] = "2"
            kwargs["params"] = params
        return super()._post(url, **kwargs)


def engine_url(base_url: Optional[str] = None) -> str:
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE


def connect(base_url: Optional[str] = None, timeout: Optional[int] = 60) -> EngineClient:
    """A client for the engine (API version negotiated); UserError when it does not answer."""
    url = engine_url(base_url)
    try:
        return EngineClient(base_url=url, version="auto", timeout=timeout)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise UserError(engine_problem(url, exc)) from None


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Stage:
    index: int
    base: str            # the FROM image (or an earlier stage's name)
    name: Optional[str]  # the AS name


@dataclass(frozen=True)
class DockerfileInfo:
    stages: Tuple[Stage, ...]
    needs_buildkit: bool
    buildkit_reasons: Tuple[str, ...]

    def base_images(self) -> List[str]:
        """External images the FROM lines need, in order, without duplicates."""
        seen: List[str] = []
        names = set()
        for s in self.stages:
            if s.base.lower() != "scratch" and s.base not in names and s.base not in seen:
                seen.append(s.base)
            if s.name:
                names.add(s.name)
        return seen


_FROM_RE = re.compile(r"^FROM\s+(?P<flags>(?:--\S+\s+)*)(?P<image>\S+)(?:\s+AS\s+(?P<name>\S+))?\s*$",
                      re.I)
_ARG_RE = re.compile(r"^ARG\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<value>\S*))?\s*$", re.I)
_VAR_RE = re.compile(r"\$(?:\{(?P<a>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<b>[A-Za-z_][A-Za-z0-9_]*))")


def _logical_lines(text: str) -> Iterator[str]:
    buf = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue  # comments, also inside a continuation
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        if buf.strip():
            yield buf.strip()
        buf = ""
    if buf.strip():
        yield buf.strip()


def parse_dockerfile(text: str) -> DockerfileInfo:
    reasons: List[str] = []
    for raw in text.splitlines():
        if not raw.startswith("#"):
            break
        if re.match(r"#\s*syntax\s*=", raw, re.I):
            reasons.append("a '# syntax=' frontend directive")
    args: Dict[str, str] = {}
    stages: List[Stage] = []
    for line in _logical_lines(text):
        word = line.split(None, 1)[0].upper()
        if word == "ARG" and not stages:
            m = _ARG_RE.match(line)
            if m and m.group("value") is not None:
                args[m.group("name")] = m.group("value").strip("\"'")
        elif word == "FROM":
            m = _FROM_RE.match(line)
            if not m:
                raise UserError(f"Dockerfile: cannot parse {line!r}")
            image = _VAR_RE.sub(lambda v: args.get(v.group("a") or v.group("b"), v.group(0)),
                                m.group("image"))
            stages.append(Stage(len(stages), image, m.group("name")))
        elif word in ("RUN", "COPY", "ADD"):
            tokens = line.split()[1:]
            for token in tokens:
                if not token.startswith("--"):
                    break
                flag = token.split("=", 1)[0]
                if flag in ("--mount", "--network", "--security", "--link", "--parents"):
                    reasons.append(f"{word} {flag}")
            if re.search(r"<<-?['\"]?[A-Za-z_]+['\"]?\s*$", line.split("&&")[0]):
                reasons.append(f"{word} heredoc")
    return DockerfileInfo(tuple(stages), bool(reasons), tuple(dict.fromkeys(reasons)))


# --------------------------------------------------------------------------- registries


def registry_of(ref: str) -> str:
    """The registry host[:port] of an image reference (docker.io for Docker Hub names)."""
    name = ref.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def _endpoint(registry: str) -> Tuple[str, int]:
    if registry == DOCKER_HUB:
        return DOCKER_HUB_ENDPOINT, 443
    host, sep, port = registry.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.strip("[]"), int(port)
    return registry, 443


def _proxy_for(host: str) -> Optional[Tuple[str, int]]:
    if host in ("localhost", "::1") or host.startswith("127."):
        return None
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    if any(host.endswith(d.strip().lstrip(".")) for d in no_proxy.split(",") if d.strip()):
        return None
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if not proxy:
        return None
    u = urlparse(proxy if "://" in proxy else "http://" + proxy)
    return (u.hostname, u.port or 80) if u.hostname else None


def registry_unreachable(registry: str, timeout: float = 3.0) -> Optional[str]:
    """Why ``registry`` cannot be reached (a short reason), or None when a TCP connect works."""
    host, port = _endpoint(registry)
    proxy = _proxy_for(host)
    target = proxy or (host, port)
    via = f" via proxy {target[0]}:{target[1]}" if proxy else ""
    try:
        with socket.create_connection(target, timeout=timeout):
            return None
    except socket.gaierror:
        return f"cannot resolve {target[0]}{via}"
    except ConnectionRefusedError:
        return f"connection refused{via}"
    except socket.timeout:
        return f"no answer within {timeout:g}s{via}"
    except OSError as exc:
        return f"{exc.strerror or exc}{via}"


# --------------------------------------------------------------------------- preflight


def engine_problem(url: str, exc: Optional[BaseException]) -> str:
    parsed = urlparse(url)
    local = parsed.scheme in ("unix", "")
    text = str(exc).lower() if exc is not None else ""
    if local and not os.path.exists(parsed.path or url):
        reason = f"no socket at {parsed.path or url}"
    elif "refused" in text:
        reason = "connection refused"
    elif "timed out" in text or "timeout" in text:
        reason = "timed out"
    elif "permission denied" in text:
        reason = "permission denied"
    else:
        reason = "no answer"
    how = (f"start one as root with `dockerd -H {url} &` (or `systemctl start docker`)"
           if local else "start it")
    return (f"docker engine: no answer at {url} ({reason}); {how}, "
            f"or point --docker-host / DOCKER_HOST at a running engine")


def image_present(client: EngineClient, ref: str) -> bool:
    candidates = [ref]
    if "@" in ref:
        name, digest = ref.split("@", 1)
        repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        candidates += [f"{repo}@{digest}", name]
    for cand in candidates:
        try:
            client.inspect_image(cand)
            return True
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError:
            continue
    return False


def _buildkit_problem(client: EngineClient) -> Optional[str]:
    """Why this engine cannot run a BuildKit build, or None (a real tiny build proves it)."""
    try:
        version = client.version()
    except docker.errors.DockerException as exc:
        return f"BuildKit: cannot read the engine version ({exc})"
    api = tuple(int(x) for x in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    if api < MIN_BUILDKIT_API:
        return (f"BuildKit: engine API {version.get('ApiVersion')} is older than 1.39 "
                f"(Docker 18.09); the Dockerfile needs BuildKit")
    probe = b"FROM scratch\nLABEL io.codecgen.preflight=buildkit\n"
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(probe)
        tf.addfile(info, io.BytesIO(probe))
    ctx.seek(0)
    image_id, error = None, None
    previous, client.buildkit = client.buildkit, True
    try:
        for item in client.build(fileobj=ctx, custom_context=True, decode=True, rm=True):
            if item.get("error"):
                error = item["error"].strip()
            aux = item.get("aux")
            if item.get("id") == "moby.image.id" and isinstance(aux, dict):
                image_id = aux.get("ID")
    except docker.errors.APIError as exc:
        error = exc.explanation or str(exc)
    finally:
        client.buildkit = previous
    if image_id:
        with contextlib.suppress(docker.errors.APIError):
            client.remove_image(image_id, force=True, noprune=False)
    if error or not image_id:
        return (f"BuildKit: not available on this engine ({error or 'no image from a probe build'}); "
                f"the Dockerfile needs it (RUN --mount)")
    return None


def preflight(dockerfile: str, base_url: Optional[str] = None, *,
              registry_timeout: float = 3.0) -> List[str]:
    """Problems that would stop a build of ``dockerfile`` (its text), one line each.

    Checks, before any work: the engine answers; each FROM image is present
    locally or its registry is reachable; BuildKit works if the Dockerfile needs it.
    """
    url = engine_url(base_url)
    info = parse_dockerfile(dockerfile)
    try:
        client = EngineClient(base_url=url, version="auto", timeout=10)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        return [engine_problem(url, exc)]
    problems: List[str] = []
    try:
        for ref in info.base_images():
            if image_present(client, ref):
                continue
            registry = registry_of(ref)
            why = registry_unreachable(registry, registry_timeout)
            if why:
                problems.append(f"base image {ref}: not present locally, and its registry "
                                f"{registry} is unreachable ({why})")
        if info.needs_buildkit:
            why = _buildkit_problem(client)
            if why:
                problems.append(why)
    finally:
        client.close()
    return problems


def check_preflight(dockerfile: str, base_url: Optional[str] = None, **kw) -> None:
    problems = preflight(dockerfile, base_url, **kw)
    if problems:
        raise PreflightError(problems)


# --------------------------------------------------------------------------- build


def _dockerignore(root: Path) -> List[str]:
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_tar(context_dir: Path, dockerfile: str = "Dockerfile") -> bytes:
    """The build context as an uncompressed tar, honouring ``.dockerignore``.

    Deterministic (sorted, mtime 0, owner 0) and without PAX headers: BuildKit
    sniffs the first 512 bytes of an uploaded context to tell a tar from a bare
    Dockerfile, and the SDK's own archives start with a PAX header (float mtimes).
    """
    root = Path(context_dir).resolve()
    from docker.utils.build import exclude_paths

    paths = sorted(exclude_paths(str(root), _dockerignore(root), dockerfile=dockerfile))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for rel in paths:
            full = root / rel
            info = tarfile.TarInfo(Path(rel).as_posix())
            st = full.lstat()
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = st.st_mode & 0o7777
            if full.is_symlink():
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
                tf.addfile(info)
            elif full.is_dir():
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif full.is_file():
                info.size = st.st_size
                with open(full, "rb") as fh:
                    tf.addfile(info, fh)
    return buf.getvalue()



@dataclass
class BuildResult:
    ok: bool
    image_id: Optional[str]
    tag: Optional[str]
    failure: Optional[Failure]
    log_path: Optional[Path]
    elapsed: float
    steps: List[Tuple[Optional[str], Optional[str], str]] = field(default_factory=list)
    bazel: Optional[Tuple[int, int]] = None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_BUILD_FAILED

    def summary(self) -> str:
        if self.ok:
            what = self.tag or self.image_id
            return f"built {what} in {self.elapsed:.1f}s" + (
                f" (log: {self.log_path})" if self.log_path else "")
        assert self.failure is not None
        return self.failure.summary(str(self.log_path) if self.log_path else None)


def build(context_dir: Path, *, tag: Optional[str] = None, target: Optional[str] = None,
          base_url: Optional[str] = None, log_path: Optional[Path] = None,
          progress: Optional[IO[str]] = None, tty: Optional[bool] = None,
          progress_interval: Optional[float] = None, nocache: bool = False,
          buildargs: Optional[Mapping[str, str]] = None, network_mode: Optional[str] = None,
          buildkit: Optional[bool] = None, run_preflight: bool = True,
          on_update=None) -> BuildResult:
    """Build ``context_dir`` (its ``Dockerfile``) and report progress as it goes.

    ``progress`` gets the condensed live status (None: silent); ``log_path`` the full
    log.  ``buildkit`` None means "if the Dockerfile needs it".  Raises
    PreflightError (before any work) when the engine, a base image or BuildKit is
    missing; a failed build is a BuildResult with ``ok`` False and a ``failure``.
    ``on_update(monitor)`` is called after each stream item (tests use it).
    """
    context_dir = Path(context_dir)
    dockerfile = (context_dir / "Dockerfile").read_text(encoding="utf-8")
    info = parse_dockerfile(dockerfile)
    if run_preflight:
        check_preflight(dockerfile, base_url)
    use_buildkit = info.needs_buildkit if buildkit is None else buildkit
    client = connect(base_url, timeout=None)
    client.buildkit = use_buildkit
    log_file = None
    if log_path is not None:
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "w", encoding="utf-8")
    monitor = BuildMonitor(log=log_file)
    printer = ProgressPrinter(progress, tty=tty, interval=progress_interval)
    monitor._write(f"docker build {context_dir} (BuildKit: {'yes' if use_buildkit else 'no'}"
                   f"{', target ' + target if target else ''}{', tag ' + tag if tag else ''})")
    try:
        stream = client.build(fileobj=io.BytesIO(context_tar(context_dir)), custom_context=True,
                              tag=tag, target=target, decode=True,
                              rm=True, forcerm=True, nocache=nocache,
                              buildargs=dict(buildargs or {}), network_mode=network_mode)
        for item in stream:
            monitor.feed(item)
            printer.update(monitor)
            if on_update is not None:
                on_update(monitor)
    except docker.errors.APIError as exc:
        monitor.feed({"error": exc.explanation or str(exc)})
    except requests.exceptions.RequestException as exc:
        monitor.feed({"error": f"lost the engine during the build: {exc}"})
    finally:
        client.close()
    failure = monitor.failure()
    if failure is None and not monitor.image_id:
        monitor.feed({"error": "the engine ended the build without an image id"})
        failure = monitor.failure()
    result = BuildResult(ok=failure is None, image_id=monitor.image_id,
                         tag=tag if failure is None else None, failure=failure,
                         log_path=log_path, elapsed=monitor.elapsed,
                         steps=list(monitor.steps_seen), bazel=monitor.bazel)
    monitor._write(result.summary())
    if log_file is not None:
        log_file.close()
    printer.finish(result.summary())
    return result


# --------------------------------------------------------------------------- images


def tag_image(image: str, repo_tag: str, base_url: Optional[str] = None) -> None:
    """Tag ``image`` (id or name) as ``repo[:tag]``."""
    repo, tag = _split_tag(repo_tag)
    client = connect(base_url)
    try:
        if not client.tag(image, repo, tag=tag, force=True):
            raise UserError(f"could not tag {image} as {repo_tag}")
    finally:
        client.close()


def _split_tag(repo_tag: str) -> Tuple[str, Optional[str]]:
    last = repo_tag.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = repo_tag.rsplit(":", 1)
        return repo, tag
    return repo_tag, None


def extract_file(image: str, path: str, dest: Path, base_url: Optional[str] = None) -> Path:
    """Copy the regular file ``path`` out of ``image`` to ``dest`` (a file path)."""
    dest = Path(dest)
    client = connect(base_url)
    cid = None
    try:
        try:
            cid = client.create_container(image, command=["/nonexistent"],
                                          labels={OWNER_LABEL: "extract"})["Id"]
        except docker.errors.ImageNotFound:
            raise UserError(f"image {image} not found") from None
        try:
            stream, stat = client.get_archive(cid, path)
        except docker.errors.NotFound:
            raise UserError(f"{path} not found in image {image}") from None
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            members = [m for m in tf.getmembers() if m.isfile()]
            if len(members) != 1:
                raise UserError(f"{path} in image {image} is not a regular file")
            content = tf.extractfile(members[0]).read()  # type: ignore[union-attr]
            mode = members[0].mode & 0o777
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.write_bytes(content)
        os.chmod(tmp, mode or 0o644)
        os.replace(tmp, dest)
        return dest
    finally:
        if cid:
            with contextlib.suppress(docker.errors.APIError):
                client.remove_container(cid, force=True)
        client.close()


def extract_from_stage(context_dir: Path, stage: str, path: str, dest: Path, *,
                       base_url: Optional[str] = None, log_path: Optional[Path] = None,
                       progress: Optional[IO[str]] = None, **build_kw) -> Path:
    """Build ``context_dir`` up to ``stage`` (cached when already built) and copy ``path`` out."""
    result = build(context_dir, target=stage, base_url=base_url, log_path=log_path,
                   progress=progress, **build_kw)
    if not result.ok:
        raise UserError(result.summary())
    assert result.image_id is not None
    try:
        return extract_file(result.image_id, path, dest, base_url=base_url)
    finally:
        client = connect(base_url)
        with contextlib.suppress(docker.errors.APIError):
            # Untagged stage image; its layers stay in the build cache.
            client.remove_image(result.image_id, noprune=False)
        client.close()


# --------------------------------------------------------------------------- containers


def create_container(image: str, command: Optional[Sequence[str]] = None, *,
                     entrypoint: Optional[Sequence[str]] = None,
                     files: Optional[Mapping[str, bytes]] = None,
                     environment: Optional[Mapping[str, str]] = None,
                     owner: str = "codecgen", name: Optional[str] = None,
                     network_mode: str = "host", base_url: Optional[str] = None) -> str:
    """Create (not start) a container on the host network, with ``files`` put in place."""
    client = connect(base_url)
    try:
        host_config = client.create_host_config(network_mode=network_mode)
        cid = client.create_container(
            image, command=list(command) if command is not None else None,
            entrypoint=list(entrypoint) if entrypoint is not None else None,
            environment=dict(environment or {}), labels={OWNER_LABEL: owner},
            host_config=host_config, name=name)["Id"]
        try:
            for path, data in sorted((files or {}).items()):
                _put_file(client, cid, path, data)
        except BaseException:
            with contextlib.suppress(docker.errors.APIError):
                client.remove_container(cid, force=True)
            raise
        return cid
    finally:
        client.close()


def _put_file(client: EngineClient, cid: str, path: str, data: bytes) -> None:
    directory, _, filename = path.rpartition("/")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(filename)
        info.size = len(data)
        info.mode = 0o644
        tf.addfile(info, io.BytesIO(data))
    if not client.put_archive(cid, directory or "/", buf.getvalue()):
        raise UserError(f"could not put {path} into container {cid[:12]}")


def start_container(image: str, command: Optional[Sequence[str]] = None, **kw) -> str:
    """Create and start a container; returns its id (remove it with remove_container)."""
    base_url = kw.get("base_url")
    cid = create_container(image, command, **kw)
    client = connect(base_url)
    try:
        client.start(cid)
    except BaseException:
        with contextlib.suppress(docker.errors.APIError):
            client.remove_container(cid, force=True)
        raise
    finally:
        client.close()
    return cid


def container_logs(cid: str, base_url: Optional[str] = None) -> str:
    client = connect(base_url)
    try:
        return client.logs(cid, stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        client.close()


def container_running(cid: str, base_url: Optional[str] = None) -> bool:
    client = connect(base_url)
    try:
        return bool(client.inspect_container(cid)["State"]["Running"])
    finally:
        client.close()


def wait_for_log(cid: str, pattern: str, timeout: float = 30.0,
                 base_url: Optional[str] = None) -> str:
    """Wait until the container's output matches ``pattern``; returns the output."""
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while True:
        out = container_logs(cid, base_url)
        if rx.search(out):
            return out
        if not container_running(cid, base_url):
            raise UserError(f"container {cid[:12]} exited before printing /{pattern}/:\n{out}")
        if time.monotonic() > deadline:
            raise UserError(f"container {cid[:12]}: no /{pattern}/ within {timeout:g}s:\n{out}")
        time.sleep(0.2)


def remove_container(cid: str, base_url: Optional[str] = None) -> None:
    """Stop and remove a container (no error if it is already gone)."""
    client = connect(base_url)
    try:
        with contextlib.suppress(docker.errors.NotFound):
            client.remove_container(cid, force=True)
    finally:
        client.close()


def cleanup_containers(owner: str = "codecgen", base_url: Optional[str] = None) -> List[str]:
    """Remove every container labelled ``io.codecgen.owner=<owner>``; returns their ids."""
    client = connect(base_url)
    try:
        found = client.containers(all=True, filters={"label": f"{OWNER_LABEL}={owner}"})
        for c in found:
            with contextlib.suppress(docker.errors.NotFound):
                client.remove_container(c["Id"], force=True)
        return [c["Id"] for c in found]
    finally:
        client.close()


@contextlib.contextmanager
def container(image: str, command: Optional[Sequence[str]] = None, **kw) -> Iterator[str]:
    """``with container(img, [...]) as cid:`` a started container, removed on exit."""
    cid = start_container(image, command, **kw)
    try:
        yield cid
    finally:
        remove_container(cid, kw.get("base_url"))


def fail(message: str, stream: Optional[IO[str]] = None) -> int:
    (stream or sys.stderr).write(message.rstrip("\n") + "\n")
    return EXIT_USAGE
