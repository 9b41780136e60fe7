"""Does an input look like a colour fundus photograph? A verdict from the image itself, so it works with any model.

`check_fundus_photo` returns `ok` or the first reason that applies, in this order:

- `blank`: (nearly) uniform, std of the brightness below `images.UNIFORM_STD` grey levels;
- `grayscale`: no colour, mean channel difference below `images.MAX_CHROMA` (B-scans, infrared and
  red-free images, en-face projections);
- `no circular field of view`: no bright disc on a dark surround (`fundus_fov.find_fov`): natural photos,
  screenshots, photos cropped inside the fundus;
- `not fundus colours`: the disc's mean colour is not the saturated orange-red of a fundus (hue outside
  `FUNDUS_HUE_DEG`, saturation below `MIN_SATURATION`).

Measured on real photos (CHASE_DB1, DRIVE, HRF, Topcon, skimage's retina) and phantom CFs: hue 9-26 degrees,
saturation 0.62-0.90; natural photos with a reddish cast (skimage's astronaut, chelsea) have 0.32-0.41.
"""
from __future__ import annotations

import colorsys

import numpy as np

from eyeoct.data.fundus_fov import brightness, find_fov
from eyeoct.data.images import MAX_CHROMA, UNIFORM_STD, mean_channel_difference

OK = "ok"
BLANK = "blank"
GRAYSCALE = "grayscale"
NO_FIELD_OF_VIEW = "no circular field of view"
NOT_FUNDUS_COLOURS = "not fundus colours"
UNREADABLE = "unreadable"  # the verdict recorded for inputs that could not be decoded
FUNDUS_HUE_DEG = (-20.0, 45.0)  # red to orange-yellow
MIN_SATURATION = 0.45


def check_fundus_photo(rgb: np.ndarray) -> str:
    """`ok` when uint8 [h,w,3] `rgb` looks like a colour fundus photograph, else the reason (see module doc)."""
    if float(brightness(rgb).std()) < UNIFORM_STD:
        return BLANK
    if mean_channel_difference(rgb) < MAX_CHROMA:
        return GRAYSCALE
    fov = find_fov(rgb)
    if fov is None:
        return NO_FIELD_OF_VIEW
    mean = rgb[fov.disc_mask(*rgb.shape[:2])].mean(axis=0) / 255.0
    hue, saturation, _ = colorsys.rgb_to_hsv(*mean)
    hue_deg = hue * 360 if hue <= 0.5 else hue * 360 - 360  # (-180, 180]: reds on both sides of 0
    if not FUNDUS_HUE_DEG[0] <= hue_deg <= FUNDUS_HUE_DEG[1] or saturation < MIN_SATURATION:
        return NOT_FUNDUS_COLOURS
    return OK
