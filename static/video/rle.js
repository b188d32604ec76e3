// COCO compressed RLE (pycocotools' string form) -> a row-major 0/1 mask, and the mask's outline.
// COCO RLE runs go down each column first (column-major), starting with a run of zeros.

// The LEB128-like string code of pycocotools (rleFrString): 5 bits per character, deltas after the 3rd run.
export function rleCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0; let k = 0; let more = true;
    while (more) {
      const c = text.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// {size: [h, w], counts: string | number[]} -> Uint8Array of h * w (row-major, 1 inside the mask).
export function decodeRle(rle) {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === 'string' ? rleCounts(rle.counts) : rle.counts;
  const bits = new Uint8Array(height * width);
  let index = 0;
  counts.forEach((run, i) => {
    if (i % 2 === 1) {
      for (let j = index; j < index + run; j++) bits[(j % height) * width + Math.floor(j / height)] = 1;
    }
    index += run;
  });
  return bits;
}

// Pixels of the mask with a pixel outside it within `radius` (a border `radius` pixels thick).
export function outline(bits, width, height, radius = 1) {
  const edge = new Uint8Array(bits.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (bits[y * width + x] && nearOutside(bits, width, height, x, y, radius)) edge[y * width + x] = 1;
    }
  }
  return edge;
}

function nearOutside(bits, width, height, x, y, radius) {
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      const nx = x + dx; const ny = y + dy;
      if (nx < 0 || ny < 0 || nx >= width || ny >= height || !bits[ny * width + nx]) return true;
    }
  }
  return false;
}
