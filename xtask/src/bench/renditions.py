"""The other side of `cargo xtask bench`'s renditions section (section 6): Pillow's draft-mode
thumbnail (the approach of seed 002) and libvips' thumbnail (pyvips, the engine of `sharp`),
each timed in a process of its own so that its peak memory is its own; a synthesized large
picture; and SSIM against a reference resize.

Modes (each prints one JSON document):
  pillow INPUT EDGE QUALITY RUNS OUT   time and peak RSS of a thumbnail, written to OUT
  vips   INPUT EDGE QUALITY RUNS OUT   the same with libvips
  synth  OUT WIDTH HEIGHT              a camera-like picture (gradients, edges, noise)
  ssim   SOURCE CANDIDATE...           SSIM of each candidate against the reference resize
"""

import io
import json
import resource
import statistics
import sys
import time


def peak_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def timed(make, runs):
    idle = peak_kb()
    times = []
    out = None
    for _ in range(runs):
        start = time.perf_counter()
        out = make()
        times.append((time.perf_counter() - start) * 1000.0)
    return out, {"median_ms": statistics.median(times), "peak_rss_kb": peak_kb(), "idle_rss_kb": idle}


def pillow(path, edge, quality, runs, out):
    from PIL import Image, ImageOps

    def make():
        with Image.open(path) as im:
            # Draft mode: libjpeg's DCT scaling to the smallest scale still >= the target.
            im.draft("RGB", (edge, edge))
            im = ImageOps.exif_transpose(im)
            im.thumbnail((edge, edge), Image.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=quality)
            return buf.getvalue()

    data, result = timed(make, runs)
    with open(out, "wb") as f:
        f.write(data)
    return result


def vips(path, edge, quality, runs, out):
    import pyvips

    def make():
        # `thumbnail` shrinks on load (DCT scaling) and turns the picture upright.
        im = pyvips.Image.thumbnail(path, edge)
        return im.write_to_buffer(".jpg", Q=quality, strip=True)

    data, result = timed(make, runs)
    with open(out, "wb") as f:
        f.write(data)
    return result


def synth(out, width, height):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(17)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 97.0) * np.cos(y / 131.0)
    g = 128 + 100 * np.sin((x + y) / 173.0)
    b = 128 + 60 * np.cos(np.hypot(x - width / 2, y - height / 2) / 59.0)
    pixels = np.stack([r, g, b], axis=-1)
    # Hard edges (a checker of 64 px tiles on a third of the frame) and sensor-like noise.
    checker = ((x // 64 + y // 64) % 2 == 0) & (x < width / 3)
    pixels[checker] *= 0.5
    pixels += rng.normal(0, 6, pixels.shape)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return {"width": width, "height": height}


def ssim(source, candidates):
    import numpy as np
    from PIL import Image, ImageOps

    def luma(im):
        return np.asarray(im.convert("L"), dtype=np.float64)

    def blur(a, k=7):
        # A k x k box mean, as an integral image (no SciPy).
        pad = k // 2
        p = np.pad(a, pad, mode="reflect")
        c = p.cumsum(0).cumsum(1)
        c = np.pad(c, ((1, 0), (1, 0)))
        return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)

    def index(a, b):
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        ma, mb = blur(a), blur(b)
        va, vb = blur(a * a) - ma * ma, blur(b * b) - mb * mb
        cov = blur(a * b) - ma * mb
        s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
        return float(s.mean())

    with Image.open(source) as im:
        # The reference: the full decode, upright, resized in one Lanczos pass.
        full = ImageOps.exif_transpose(im.convert("RGB"))
    results = []
    for path in candidates:
        with Image.open(path) as c:
            c.load()
            reference = full.resize(c.size, Image.LANCZOS)
            results.append({"candidate": path, "ssim": index(luma(reference), luma(c))})
    return results


def main(argv):
    mode = argv[1]
    if mode in ("pillow", "vips"):
        path, edge, quality, runs, out = argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6]
        result = (pillow if mode == "pillow" else vips)(path, edge, quality, runs, out)
    elif mode == "synth":
        result = synth(argv[2], int(argv[3]), int(argv[4]))
    elif mode == "ssim":
        result = ssim(argv[2], argv[3:])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
