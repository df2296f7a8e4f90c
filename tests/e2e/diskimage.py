"""ext4 disk images for guests, made and read back without root or mounting
(mkfs.ext4 -d, debugfs). Shared by tests/e2e and tests/e2e-arm64."""
import subprocess


def mkfs_ext4(img, size_mb, files):
    """An ext4 image holding `files` (name -> bytes), made without root."""
    src = img.parent / (img.name + ".d")
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(img), f"{size_mb}M"],
                   check=True, capture_output=True)


def debugfs_cat(img, path):
    """A file's bytes from an ext4 image, read without mounting it."""
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(img)],
                          check=True, capture_output=True).stdout
