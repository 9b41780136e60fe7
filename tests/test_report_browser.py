"""The comparison report in a real browser: headless Chromium loads it (skipped when no Chromium is installed).

A copy of the report gets a probe script at the top of <head>: it records script errors, failed resource
loads (error events in the capture phase) and console.error calls, and after the load event writes every
image's load state into the page, which `chromium --dump-dom` prints. Chromium's own console log (stderr with
--enable-logging) must stay empty too.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from eyeoct.eval import EvaluationSettings, compare_methods
from eyeoct.volume_io import write_volume

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
PROBE = """<script>
window.__probe = {errors: []};
window.addEventListener('error', function (e) {
  window.__probe.errors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || 'error'));
}, true);
var originalError = console.error;
console.error = function () { window.__probe.errors.push(Array.from(arguments).join(' ')); originalError.apply(console, arguments); };
window.addEventListener('load', function () {
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({errors: window.__probe.errors, images: Array.from(document.images).map(
    function (i) { return {alt: i.getAttribute('alt'), complete: i.complete, width: i.naturalWidth}; })});
  document.body.appendChild(out);
});
</script>"""


def _open_in_chromium(page: Path, profile: Path) -> tuple[dict, str]:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
               "--dump-dom", page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the probe did not report (chromium exit {result.returncode}): {result.stderr[-2000:]}"
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")), "\n".join(console)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_loads_every_image_without_console_errors(tmp_path):
    rng = np.random.default_rng(0)
    for case in ("c0", "c1", "c2"):
        truth = rng.integers(30, 200, (6, 40, 56), dtype=np.uint8)
        write_volume(tmp_path / "gt", case, truth)
        write_volume(tmp_path / "near", case, np.clip(truth.astype(int) + rng.integers(-20, 20, truth.shape), 0, 255)
                     .astype(np.uint8))
        write_volume(tmp_path / "far", case, rng.integers(30, 200, (6, 40, 56), dtype=np.uint8))
    settings = EvaluationSettings(metrics=("ssim", "psnr", "thickness"), bootstrap=200, examples=3, progress=False)
    out = compare_methods({"near": tmp_path / "near", "far": tmp_path / "far"}, tmp_path / "gt", tmp_path / "report",
                          settings).out_dir
    html = (out / "report.html").read_text(encoding="utf-8")
    page = out / "probed.html"
    page.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")

    probe, console = _open_in_chromium(page, tmp_path / "profile")
    images = probe["images"]
    assert len(images) == html.count("<img ") == 4 + 3  # metrics, SSIM/thickness per slice, scatter; 3 eyes
    assert all(image["complete"] and image["width"] > 0 for image in images), images
    assert probe["errors"] == [] and console == ""
