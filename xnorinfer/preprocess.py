"""Image loading and preprocessing for classification, driven by a model's metadata.

Policy (the same for every image, documented in docs/architecture.md):
- EXIF orientation is applied; palette, CMYK, 16-bit, float, 1-bit and alpha images are converted
  to the model's colour mode ('L' for one input channel, 'RGB' for three); transparent pixels
  are composited over white.
- Resize: the shorter side is scaled to `resize` pixels (bilinear, with antialiasing), then the
  centre `crop` x `crop` square is cut (`resize` defaults to the input size: no margin is lost
  beyond what squaring needs; ImageNet models use 256 / 224 like torchvision's eval transform).
- Pixels are scaled to [0, 1] and normalised with the model's per-channel mean and std.
Images above MAX_PIXELS, empty, truncated or not images at all raise ImageError."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._files import open_regular_file

# Larger images are refused (a decompression bomb or a mistake). Checked on the header's size
# before decoding; Pillow's own process-wide Image.MAX_IMAGE_PIXELS is left as the caller set it.
MAX_PIXELS = 64_000_000


class ImageError(ValueError):
    """An input is not a usable image. `path`: the source's path (None for arrays, PIL images and
    file objects); `message`: what is wrong. classify(..., errors="skip") returns it as the failed
    image's record."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.message, self.path = message, path

    def __repr__(self) -> str:
        return f"ImageError(path={self.path!r}, message={self.message!r})"


def open_image(source) -> Image.Image:
    """A fully decoded, orientation-corrected PIL image from a path, file object or PIL image."""
    if isinstance(source, Image.Image):
        image = source
    else:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "image"
        try:
            if isinstance(source, (str, os.PathLike)):
                with open_regular_file(source, lambda what: ImageError(f"{name}: {what}")) as f:
                    image = _decode(f, name)
            else:
                image = _decode(source, name)
        except FileNotFoundError:
            raise ImageError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a directory") from None
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not an image (or a format Pillow cannot read)") from None
        except Image.DecompressionBombError:  # over twice the caller's Image.MAX_IMAGE_PIXELS
            raise ImageError(f"{name}: larger than {MAX_PIXELS:,} pixels, refused") from None
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow's errors for truncated/corrupt data
            raise ImageError(f"{name}: cannot be decoded ({exc})") from None
    if image.width < 1 or image.height < 1:
        raise ImageError("image has zero size")
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"image of {image.width}x{image.height} pixels is larger than {MAX_PIXELS:,}, refused")
    return ImageOps.exif_transpose(image)


def _decode(file, name: str) -> Image.Image:
    image = Image.open(file)  # reads the header only
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"{name}: {image.width}x{image.height} pixels, larger than {MAX_PIXELS:,}, refused")
    image.load()
    return image


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert any Pillow mode to 'RGB' or 'L' (alpha over white, 16-bit and float rescaled)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert(mode) if image.mode != mode else image


def resize_and_crop(image: Image.Image, resize: int, crop: int) -> Image.Image:
    """Scale the shorter side to `resize`, keep the centre crop x crop square. Done as one resample
    of the source region that becomes the crop, so a 1 x 60,000,000 image costs no more than a
    square one."""
    w, h = image.size
    side = min(w, h) * crop / resize  # the crop's extent in source pixels
    left, top = (w - side) / 2, (h - side) / 2
    return image.resize((crop, crop), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))


def from_array(array: np.ndarray) -> Image.Image:
    """A PIL image from an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        raise ImageError(f"image arrays must be uint8 (H, W[, C]), got {getattr(array, 'dtype', type(array))}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise ImageError(f"image arrays must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))


def preprocess(image, metadata: dict) -> np.ndarray:
    """One image (path, file, PIL image or uint8 array) -> float32 (H, W, C) ready for the model.

    metadata: input_size (C, H, W) and optional mean, std (one per channel) and preprocess
    {resize, crop}, as a converted model's metadata holds them."""
    channels, size, _ = metadata["input_size"]
    for key in ("mean", "std"):
        if metadata.get(key) is not None and len(metadata[key]) != channels:
            raise ValueError(f"model metadata {key} has {len(metadata[key])} values for {channels} input channels")
    options = metadata.get("preprocess") or {}
    crop = int(options.get("crop", size))
    resize = int(options.get("resize", crop))
    image = from_array(image) if isinstance(image, np.ndarray) else open_image(image)
    image = resize_and_crop(to_mode(image, "L" if channels == 1 else "RGB"), resize, crop)
    x = np.asarray(image, dtype=np.float32).reshape(crop, crop, channels) / 255.0
    mean, std = metadata.get("mean"), metadata.get("std")
    if mean is not None:
        x = x - np.asarray(mean, np.float32)
    if std is not None:
        x = x / np.asarray(std, np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)
