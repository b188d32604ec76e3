// The image mode's downloads: every mask as one PNG, and as COCO JSON with compressed RLE (pycocotools' form).
import { download } from '../common.js';
import { allLayers, setStatus, state, ui } from './page.js';

export function wireDownloads() {
  ui.downloadPng.addEventListener('click', () => {
    const layers = allLayers();
    if (!layers.length) { setStatus('No masks to download yet.', 'error'); return; }
    const out = document.createElement('canvas');
    Object.assign(out, { width: state.width, height: state.height });
    const octx = out.getContext('2d');
    for (const { layer } of layers) octx.drawImage(layer.canvas, 0, 0);
    out.toBlob((blob) => download(blob, 'masks.png'), 'image/png');
  });

  ui.downloadRle.addEventListener('click', () => {
    const layers = allLayers();
    if (!layers.length) { setStatus('No masks to download yet.', 'error'); return; }
    const annotations = layers.map(({ layer, object_id, text, score }) => ({
      ...(object_id ? { object_id } : { text }), score,
      ...rleStats(layer.bits),
      segmentation: { size: [state.height, state.width], counts: rleString(rleCounts(layer.bits)) },
    }));
    const body = { image: { id: state.imageId, width: state.width, height: state.height }, annotations };
    download(new Blob([JSON.stringify(body, null, 1)], { type: 'application/json' }), 'masks.coco.json');
  });
}

// COCO RLE: run lengths in column-major order starting with a run of zeros, then pycocotools' string code.
function rleCounts(bits) {
  const { width, height } = state;
  const counts = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      if (bits[y * width + x] !== value) { counts.push(run); run = 0; value = bits[y * width + x]; }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

function rleString(counts) {
  let out = '';
  counts.forEach((count, i) => {
    let x = i > 2 ? count - counts[i - 2] : count;
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  });
  return out;
}

function rleStats(bits) {
  const { width } = state;
  let area = 0; let x0 = Infinity; let y0 = Infinity; let x1 = -1; let y1 = -1;
  for (let i = 0; i < bits.length; i++) {
    if (!bits[i]) continue;
    area++;
    const x = i % width; const y = (i - x) / width;
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return { area, bbox: area ? [x0, y0, x1 - x0 + 1, y1 - y0 + 1] : [0, 0, 0, 0] };
}
