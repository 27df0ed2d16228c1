"""Artifacts: lookup, digests, safe ZIP unpacking, permissions — through the store and through a deploy."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest
from conftest import Nucleus

from nucleus.errors import NucleusError
from nucleus.paths import RootLayout
from nucleus.recipe import parse_recipe
from nucleus.recipe.model import Artifact
from nucleus.store import Store, find_artifact_source, tree_digest, unpack_zip


def digest_of(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def make_component(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def artifact_recipe(nucleus: Nucleus, artifacts: str, run: str = "true") -> Path:
    path = nucleus.workdir / "art.yaml"
    path.write_text(
        "RecipeFormatVersion: '2020-01-25'\nComponentName: com.example.Art\nComponentVersion: '1.0.0'\n"
        f"Manifests:\n  - Lifecycle:\n      Run: {run}\n    Artifacts:\n{artifacts}")
    return path


def test_artifacts_are_imported_checked_unpacked_and_modes_set(nucleus: Nucleus) -> None:
    tool = b"print('tool')\n"
    source = make_component(nucleus.workdir / "components" / "com.example.Art" / "1.0.0",
                            {"tool.py": tool, "unlisted.txt": b"also imported\n"})
    with zipfile.ZipFile(source / "bundle.zip", "w") as archive:
        archive.writestr("pkg/a.txt", "unpacked\n")
    recipe = artifact_recipe(nucleus, f"""      - URI: s3://bucket/tool.py
        Digest: {digest_of(tool)}
        Algorithm: SHA-256
        Permission: {{Read: ALL, Execute: OWNER}}
      - URI: s3://bucket/bundle.zip
        Unarchive: ZIP
""", run="cat {artifacts:decompressedPath}/bundle/pkg/a.txt {artifacts:path}/unlisted.txt")
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 0, result.err
    assert "com.example.Art | unpacked" in result.out and "com.example.Art | also imported" in result.out
    stored = nucleus.root / "packages" / "artifacts" / "com.example.Art" / "1.0.0"
    assert stat.S_IMODE((stored / "tool.py").stat().st_mode) == 0o744
    assert stat.S_IMODE((stored / "bundle.zip").stat().st_mode) == 0o600
    assert (nucleus.root / "packages" / "artifacts-unarchived" / "com.example.Art" / "1.0.0" / "bundle" / "pkg"
            / "a.txt").read_text() == "unpacked\n"


def test_digest_mismatch_refuses_the_deployment(nucleus: Nucleus) -> None:
    make_component(nucleus.workdir / "components" / "com.example.Art" / "1.0.0", {"tool.py": b"changed"})
    recipe = artifact_recipe(nucleus, f"      - URI: s3://bucket/tool.py\n        Digest: {digest_of(b'original')}\n")
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 2
    assert "the artifact tool.py does not match its Digest" in result.err
    assert "update the Digest or restore the file" in result.err
    assert not (nucleus.root / "logs" / "com.example.Art.log").exists()  # nothing ran


def test_missing_remote_artifact_names_the_expected_local_path(nucleus: Nucleus) -> None:
    recipe = artifact_recipe(nucleus, "      - URI: s3://bucket/model.bin\n")
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 2
    assert ("the artifact s3://bucket/model.bin is not present locally (downloading s3: artifacts is not "
            "supported yet); expected it at components/com.example.Art/1.0.0/model.bin") in result.err


def test_artifacts_option_and_default_lookup(tmp_path: Path) -> None:
    recipe_dir = tmp_path / "project" / "recipes"
    recipe_dir.mkdir(parents=True)
    beside = make_component(tmp_path / "project" / "components" / "A" / "1.0.0", {"x": b"1"})
    cwd_copy = make_component(tmp_path / "cwd" / "components" / "A" / "1.0.0", {"x": b"2"})
    explicit = make_component(tmp_path / "explicit" / "A" / "1.0.0", {"x": b"3"})
    recipe = recipe_dir / "a.yaml"
    assert find_artifact_source("A", "1.0.0", recipe, tmp_path / "explicit", tmp_path / "cwd") == explicit
    assert find_artifact_source("A", "1.0.0", recipe, None, tmp_path / "cwd") == cwd_copy
    assert find_artifact_source("A", "1.0.0", recipe, None, tmp_path / "elsewhere") == beside
    assert find_artifact_source("A", "2.0.0", recipe, None, tmp_path / "cwd") is None


@pytest.mark.parametrize("entry", ["../escape.txt", "/etc/passwd-copy", "a/../../escape.txt", "C:/windows.txt"])
def test_zip_entries_that_escape_are_refused(tmp_path: Path, entry: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr("fine.txt", "ok")
        zip_file.writestr(entry, "escaped")
    target = tmp_path / "out" / "evil"
    with pytest.raises(NucleusError) as caught:
        unpack_zip(archive, target, Artifact("s3://b/evil.zip", unarchive="ZIP"))
    assert "would land outside the unpack folder" in str(caught.value)
    assert not target.exists() and not (tmp_path / "escape.txt").exists()


def test_zip_links_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zip_file.writestr(info, "/etc")
    with pytest.raises(NucleusError) as caught:
        unpack_zip(archive, tmp_path / "out" / "link", Artifact("s3://b/link.zip", unarchive="ZIP"))
    assert "is a symbolic link" in str(caught.value)


def test_not_a_zip_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "fake.zip"
    archive.write_text("not a zip")
    with pytest.raises(NucleusError) as caught:
        unpack_zip(archive, tmp_path / "out" / "fake", Artifact("s3://b/fake.zip", unarchive="ZIP"))
    assert "fake.zip is not a valid ZIP archive" in str(caught.value)


def test_import_is_idempotent_and_notices_changes(tmp_path: Path) -> None:
    layout = RootLayout(tmp_path / "root")
    layout.ensure()
    source = make_component(tmp_path / "src", {"a.txt": b"one"})
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text("RecipeFormatVersion: '2020-01-25'\nComponentName: A\nComponentVersion: '1.0.0'\n"
                           "Manifests:\n  - Lifecycle: {Run: 'true'}\n")
    recipe = parse_recipe(recipe_file.read_text(), str(recipe_file), digest="d1").recipe
    store = Store(layout)
    first = store.import_component(recipe, recipe.manifests[0], source)
    assert store.import_component(recipe, recipe.manifests[0], source) == first
    (source / "a.txt").write_bytes(b"two")
    second = store.import_component(recipe, recipe.manifests[0], source)
    assert second != first
    assert (layout.artifacts("A", "1.0.0") / "a.txt").read_bytes() == b"two"
    assert tree_digest(source) == tree_digest(layout.artifacts("A", "1.0.0"))
    assert not [p for p in layout.artifacts_dir.joinpath("A").iterdir() if p.name.startswith(".")]
    assert store.recipe_files("A") == [layout.recipes_dir / "A@1.0.0.recipe.yaml"]
    os.chmod(source / "a.txt", 0o755)
    assert store.import_component(recipe, recipe.manifests[0], source) != second  # modes count too


def zeros_zip(path: Path, megabytes: int, name: str = "zeros.bin") -> Path:
    """A ZIP holding `megabytes` MiB of zeros: about a thousand times smaller than what it unpacks to."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(name, "w", force_zip64=True) as entry:
            block = bytes(1024 * 1024)
            for _ in range(megabytes):
                entry.write(block)
    return path


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    # Issue 11, item 9: 200 MiB from a few hundred KiB is more than 100× (and more than the 64 MiB floor).
    archive = zeros_zip(tmp_path / "bomb.zip", 200)
    target = tmp_path / "out" / "bomb"
    with pytest.raises(NucleusError) as caught:
        unpack_zip(archive, target, Artifact("s3://b/bomb.zip", unarchive="ZIP"))
    message = str(caught.value)
    assert "bomb.zip unpacks to 200.0 MiB" in message and "more than the 64.0 MiB allowed by 100×" in message
    assert "unarchive.maxRatio" in message and caught.value.exit_code == 2
    assert not target.exists() and os.listdir(tmp_path / "out") == []  # nothing written, no staging left


def test_a_small_very_compressible_archive_still_unpacks(tmp_path: Path) -> None:
    archive = zeros_zip(tmp_path / "small.zip", 10)  # 1000× its size, but only 10 MiB: under the floor
    unpack_zip(archive, tmp_path / "out" / "small", Artifact("s3://b/small.zip", unarchive="ZIP"))
    assert (tmp_path / "out" / "small" / "zeros.bin").stat().st_size == 10 * 1024 * 1024


def test_the_unpack_limits_are_configurable(nucleus: Nucleus) -> None:
    source = make_component(nucleus.workdir / "components" / "com.example.Art" / "1.0.0", {})
    with zipfile.ZipFile(source / "data.zip", "w") as archive:
        archive.writestr("random.bin", os.urandom(3 * 1024 * 1024))
    recipe = artifact_recipe(nucleus, "      - URI: s3://bucket/data.zip\n        Unarchive: ZIP\n")
    config = nucleus.workdir / "config.yaml"
    config.write_text("services:\n  aws.greengrass.Nucleus:\n    configuration:\n      unarchive: {maxSizeMB: 2}\n")
    result = nucleus.run("--config", str(config), "deploy", str(recipe))
    assert result.code == 2, result.out + result.err
    assert "data.zip unpacks to 3.0 MiB" in result.err and "allowed by unarchive.maxSizeMB" in result.err
    assert "Traceback" not in result.err
    config.write_text("services:\n  aws.greengrass.Nucleus:\n    configuration:\n      unarchive: {maxSizeMB: 4}\n")
    assert nucleus.run("--config", str(config), "deploy", str(recipe)).code == 0


def test_an_archive_named_dot_dot_zip_is_refused_and_nothing_outside_is_removed(nucleus: Nucleus,
                                                                             tmp_path: Path) -> None:
    # Issue 11, item 10: `...zip` would unpack into `<Version>/..` and remove every other version.
    recipe = artifact_recipe(nucleus, "      - URI: s3://bucket/...zip\n        Unarchive: ZIP\n")
    result = nucleus.run("validate", str(recipe))
    assert result.code == 2
    assert f"{recipe}:8:9:" in result.err and "'...zip' would unpack into the folder '..'" in result.err
    # The store refuses such a folder itself too (a recipe stored before this check existed).
    other = tmp_path / "unarchived" / "com.example.Art" / "0.9.0"
    other.mkdir(parents=True)
    archive = tmp_path / "...zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr("a.txt", "a")
    with pytest.raises(NucleusError):
        unpack_zip(archive, tmp_path / "unarchived" / "com.example.Art" / "1.0.0" / "..",
                   Artifact("s3://b/...zip", unarchive="ZIP"))
    assert other.is_dir()
