// Click-to-segment page for /ws/realtime. Vanilla JS, no dependencies, works offline.
// The canvas holds the image at its own pixel size and CSS scales it to the screen; every pointer position
// is mapped from CSS pixels to image pixels (toImage), which is what the server expects.
(() => {
  'use strict';

  const PALETTE = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 128, 128], [170, 110, 40]];
  const DRAG_PX = 8; // CSS pixels a pointer must travel before a press becomes a box drag

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'), canvas: $('canvas'), stage: $('stage'), placeholder: $('placeholder'),
    file: $('image-input'), sample: $('sample'), urlForm: $('url-form'), url: $('url-input'),
    mode: $('mode'), newObject: $('new-object'), undo: $('undo'), clear: $('clear'), opacity: $('opacity'),
    textForm: $('text-form'), text: $('text-prompt'), confidence: $('confidence'),
    confidenceValue: $('confidence-value'), objects: $('objects'), points: $('points'),
    downloadPng: $('download-png'), downloadRle: $('download-rle'),
  };
  const ctx = ui.canvas.getContext('2d');
  const overlay = document.createElement('canvas');
  const overlayCtx = overlay.getContext('2d');

  const state = {
    ws: null, image: null, width: 0, height: 0, imageId: null, source: null, reloading: false, imageKey: null,
    objects: new Map(), current: 1, text: null, negative: false, drag: null,
  };

  // ------------------------------------------------------------------ status and socket
  function setStatus(text, kind = '') {
    ui.status.textContent = text;
    ui.status.className = `status ${kind}`;
  }

  function send(message) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      setStatus('Not connected to the server yet; retrying…', 'error');
      return false;
    }
    state.ws.send(JSON.stringify(message));
    return true;
  }

  // Servers with SAM3_API_KEYS want a key; browsers cannot set WebSocket headers, so it goes in the URL.
  // Open the page once as /app/?api_key=KEY: the key is remembered in this browser (localStorage).
  function apiKey() {
    const fromUrl = new URLSearchParams(location.search).get('api_key');
    try {
      if (fromUrl) localStorage.setItem('sam3_api_key', fromUrl);
      return fromUrl || localStorage.getItem('sam3_api_key');
    } catch (err) { return fromUrl; } // storage blocked (private mode): the URL's key still works
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const params = new URLSearchParams();
    const key = apiKey();
    if (key) params.set('api_key', key);
    // The image key routes the socket to the replica holding the image when the server is scaled out.
    if (state.imageKey) params.set('image_key', state.imageKey);
    const query = params.toString() ? `?${params}` : '';
    const ws = new WebSocket(`${scheme}//${location.host}/ws/realtime${query}`);
    ws.imageKey = state.imageKey;
    state.ws = ws;
    ws.onmessage = (event) => handle(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (state.ws !== ws || event.code === 1008) return; // 1008: refused key, retrying cannot help
      const wait = event.code === 1013 ? 5000 : 1500;
      setStatus(`Disconnected (code ${event.code}${event.reason ? `, ${event.reason}` : ''}); reconnecting…`, 'error');
      setTimeout(connect, wait);
    };
  }

  const handlers = {
    session_created() {
      if (state.imageId || state.source) { // reconnected: restore the image, by id first (no upload)
        state.reloading = Boolean(state.imageId);
        send(state.imageId ? { type: 'init', image_id: state.imageId } : { type: 'init', ...state.source });
        setStatus(state.reloading ? 'Reconnected; restoring the image…' : 'Encoding image…');
      } else {
        setStatus('Connected. Choose, drop or paste an image.', 'ok');
      }
    },
    image_loaded(ev) {
      state.reloading = false;
      Object.assign(state, { width: ev.width, height: ev.height, imageId: ev.image_id, text: null });
      resetObjects(ev.object_id);
      ui.canvas.width = ev.width;
      ui.canvas.height = ev.height;
      ui.canvas.hidden = false;
      ui.placeholder.hidden = true;
      render();
      setStatus(`Image ${ev.width}×${ev.height} ready in ${fmt(ev.latency_ms)} ms. Click an object.`, 'ok');
    },
    point_added(ev) {
      object(ev.object_id).points.push({ x: ev.x, y: ev.y, label: ev.label });
      state.current = ev.object_id;
      render();
    },
    box_added(ev) {
      object(ev.object_id).box = [ev.x1, ev.y1, ev.x2, ev.y2];
      state.current = ev.object_id;
      render();
    },
    async segmentation_result(ev) {
      const target = object(ev.object_id);
      const token = ++target.token; // a later result wins even if an earlier mask decodes last
      const layer = await maskLayer(ev.mask, target.color);
      if (token !== target.token) return;
      Object.assign(target, { layer, score: ev.score });
      render();
      const pos = target.points.filter((p) => p.label === 1).length;
      setStatus(`Object ${ev.object_id}: score ${ev.score.toFixed(3)}, ${pos} positive / ` +
        `${target.points.length - pos} negative point(s) · ${fmt(ev.latency_ms)} ms`, 'ok');
    },
    async text_result(ev) {
      const layers = await Promise.all(ev.masks.map((m, i) => maskLayer(m, PALETTE[(i + 5) % PALETTE.length])));
      state.text = { text: ev.text, scores: ev.scores, boxes: ev.boxes, layers };
      render();
      setStatus(`“${ev.text}”: ${ev.num_masks} mask(s) · ${fmt(ev.latency_ms)} ms`, ev.num_masks ? 'ok' : '');
    },
    object_created(ev) {
      state.objects.set(ev.object_id, newObject(ev.object_id));
      state.current = ev.object_id;
      render();
      setStatus(`Object ${ev.object_id}: click it.`, 'ok');
    },
    prompt_removed(ev) {
      const target = object(ev.object_id);
      if (ev.kind === 'point') target.points.pop(); else if (!ev.has_box) target.box = null;
      if (!ev.total_points && !ev.has_box) Object.assign(target, { layer: null, score: null, token: target.token + 1 });
      render();
      setStatus(`Removed the last ${ev.kind} of object ${ev.object_id}.`);
    },
    points_cleared(ev) {
      if (ev.object_id == null) { resetObjects(ev.current_object_id); state.text = null; }
      else state.objects.set(ev.object_id, newObject(ev.object_id));
      render();
      setStatus('Cleared.');
    },
    error(ev) {
      if (ev.code === 'unauthorized') {
        setStatus(`${ev.message}. Open this page as /app/?api_key=YOUR_KEY.`, 'error');
        return;
      }
      if (state.reloading && ev.code === 'not_found' && state.source) { // the server forgot it: upload again
        state.reloading = false;
        send({ type: 'init', ...state.source });
        return;
      }
      setStatus(`Error: ${ev.message}`, 'error');
    },
    session_closed(ev) { setStatus(`Session closed (${ev.reason}).`); },
  };

  function handle(event) {
    const handler = handlers[event.type];
    if (handler) handler(event);
  }

  // ------------------------------------------------------------------ objects and masks
  function newObject(id) {
    return { id, color: PALETTE[(id - 1) % PALETTE.length], points: [], box: null, layer: null, score: null, token: 0 };
  }

  function object(id) {
    if (!state.objects.has(id)) state.objects.set(id, newObject(id));
    return state.objects.get(id);
  }

  function resetObjects(current) {
    state.objects = new Map([[current, newObject(current)]]);
    state.current = current;
  }

  function loadImage(src) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error('image could not be displayed'));
      img.src = src;
    });
  }

  // A server mask (PNG base64, 0/255; the page keeps the default mask_format) -> coloured layer + 0/1 bits.
  async function maskLayer(mask, color) {
    const { width, height } = state;
    const img = await loadImage(`data:image/png;base64,${mask}`);
    const scratch = document.createElement('canvas');
    Object.assign(scratch, { width, height });
    const sctx = scratch.getContext('2d');
    sctx.drawImage(img, 0, 0, width, height);
    const gray = sctx.getImageData(0, 0, width, height).data;
    const bits = new Uint8Array(width * height);
    for (let i = 0; i < bits.length; i++) bits[i] = gray[4 * i] > 127 ? 1 : 0;
    const canvas = document.createElement('canvas');
    Object.assign(canvas, { width, height });
    const lctx = canvas.getContext('2d');
    const data = lctx.createImageData(width, height);
    for (let i = 0; i < bits.length; i++) {
      if (!bits[i]) continue;
      data.data.set([color[0], color[1], color[2], 255], 4 * i);
    }
    lctx.putImageData(data, 0, 0);
    return { canvas, bits, color };
  }

  // ------------------------------------------------------------------ drawing
  function render() {
    const { width, height } = state;
    if (!width) return;
    ctx.clearRect(0, 0, width, height);
    if (state.image) ctx.drawImage(state.image, 0, 0, width, height);
    else { ctx.fillStyle = '#888'; ctx.fillRect(0, 0, width, height); }
    // Masks are stacked opaque on one layer first, so overlapping masks do not hide the photo.
    if (overlay.width !== width || overlay.height !== height) Object.assign(overlay, { width, height });
    overlayCtx.clearRect(0, 0, width, height);
    for (const { layer } of allLayers()) overlayCtx.drawImage(layer.canvas, 0, 0);
    ctx.globalAlpha = Number(ui.opacity.value);
    ctx.drawImage(overlay, 0, 0);
    ctx.globalAlpha = 1;
    const unit = pixelsPerCssPixel();
    for (const obj of state.objects.values()) drawPrompts(obj, unit);
    if (state.drag && state.drag.moved) drawBox([state.drag.start, state.drag.end], [255, 255, 255], unit, true);
    renderObjectList();
  }

  function drawPrompts(obj, unit) {
    if (obj.box) drawBox([{ x: obj.box[0], y: obj.box[1] }, { x: obj.box[2], y: obj.box[3] }], obj.color, unit);
    for (const p of obj.points) {
      ctx.beginPath();
      ctx.arc(p.x, p.y, 6 * unit, 0, 2 * Math.PI);
      ctx.fillStyle = p.label === 1 ? '#22c55e' : '#ef4444';
      ctx.fill();
      ctx.lineWidth = 2 * unit;
      ctx.strokeStyle = obj.id === state.current ? '#ffffff' : rgb(obj.color);
      ctx.stroke();
    }
  }

  function drawBox([a, b], color, unit, dashed = false) {
    ctx.save();
    ctx.lineWidth = 2 * unit;
    ctx.strokeStyle = rgb(color);
    if (dashed) ctx.setLineDash([6 * unit, 4 * unit]);
    ctx.strokeRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x), Math.abs(b.y - a.y));
    ctx.restore();
  }

  function renderObjectList() {
    ui.objects.replaceChildren(...[...state.objects.values()].map((obj) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = obj.id === state.current ? 'current' : '';
      button.dataset.objectId = String(obj.id);
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = rgb(obj.color);
      const score = obj.score == null ? '' : ` · ${obj.score.toFixed(2)}`;
      button.append(swatch, `Object ${obj.id}${score}`);
      button.addEventListener('click', () => { state.current = obj.id; render(); });
      item.append(button);
      return item;
    }));
    const current = state.objects.get(state.current);
    const pos = current ? current.points.filter((p) => p.label === 1).length : 0;
    const neg = current ? current.points.length - pos : 0;
    ui.points.textContent = current ? `Object ${current.id}: ${pos} positive, ${neg} negative` +
      `${current.box ? ', 1 box' : ''}` : '';
  }

  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  const fmt = (ms) => (ms < 10 ? ms.toFixed(1) : Math.round(ms).toString());

  function pixelsPerCssPixel() {
    const rect = ui.canvas.getBoundingClientRect();
    return rect.width ? state.width / rect.width : 1;
  }

  // CSS pixels of the pointer -> pixels of the original image (the canvas is scaled by CSS).
  function toImage(event) {
    const rect = ui.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * state.width) / rect.width;
    const y = ((event.clientY - rect.top) * state.height) / rect.height;
    const clamp = (v, max) => Math.round(Math.min(Math.max(v, 0), max) * 10) / 10;
    return { x: clamp(x, state.width), y: clamp(y, state.height) };
  }

  // ------------------------------------------------------------------ pointer input (mouse, touch, pen)
  ui.canvas.addEventListener('contextmenu', (event) => event.preventDefault());
  ui.canvas.addEventListener('pointerdown', (event) => {
    if (!state.imageId || (event.button !== 0 && event.button !== 2)) return;
    event.preventDefault();
    ui.canvas.setPointerCapture(event.pointerId);
    const start = toImage(event);
    state.drag = { start, end: start, x: event.clientX, y: event.clientY, button: event.button, moved: false };
  });
  ui.canvas.addEventListener('pointermove', (event) => {
    const drag = state.drag;
    if (!drag) return;
    drag.moved = drag.moved || Math.hypot(event.clientX - drag.x, event.clientY - drag.y) > DRAG_PX;
    drag.end = toImage(event);
    if (drag.moved) render();
  });
  ui.canvas.addEventListener('pointerup', (event) => {
    const drag = state.drag;
    state.drag = null;
    if (!drag) return;
    const end = toImage(event);
    if (drag.moved && drag.button === 0) {
      const [x1, x2] = [drag.start.x, end.x].sort((a, b) => a - b);
      const [y1, y2] = [drag.start.y, end.y].sort((a, b) => a - b);
      if (x2 > x1 && y2 > y1) send({ type: 'box', x1, y1, x2, y2, object_id: state.current });
    } else {
      const label = drag.button === 2 || state.negative ? 0 : 1;
      send({ type: 'click', x: drag.start.x, y: drag.start.y, label, object_id: state.current });
    }
    render();
  });
  ui.canvas.addEventListener('pointercancel', () => { state.drag = null; render(); });

  // ------------------------------------------------------------------ loading images
  function readFile(file) {
    if (!file || !file.type.startsWith('image/')) {
      setStatus('That is not an image file.', 'error');
      return;
    }
    const reader = new FileReader();
    reader.onload = async () => startImage({ image: reader.result }, reader.result,
      await window.sam3ImageKey.imageKey(await file.arrayBuffer()));
    reader.onerror = () => setStatus('The file could not be read.', 'error');
    reader.readAsDataURL(file);
  }

  async function startImage(source, displaySrc, key) {
    setStatus('Loading image…');
    try {
      state.image = await loadImage(displaySrc);
    } catch (err) {
      state.image = null; // e.g. a URL the browser may not show: masks still draw on grey
    }
    state.source = source;
    state.imageId = null;
    state.imageKey = key;
    if (state.ws && state.ws.imageKey !== key) { // a new image may live on another replica: reconnect
      const old = state.ws;
      old.onmessage = null; // late answers about the previous image are dropped
      connect(); // its session_created sends the init
      old.close(1000, 'new image');
    } else if (send({ type: 'init', ...source })) setStatus('Encoding image…');
  }

  ui.file.addEventListener('change', () => readFile(ui.file.files[0]));
  ui.sample.addEventListener('click', async () => {
    const response = await fetch('samples/chelsea.png');
    readFile(new File([await response.blob()], 'chelsea.png', { type: 'image/png' }));
  });
  ui.urlForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const url = ui.url.value.trim();
    if (url) window.sam3ImageKey.imageKey(url).then((key) => startImage({ image_url: url }, url, key));
  });
  ui.stage.addEventListener('dragover', (event) => { event.preventDefault(); ui.stage.classList.add('dragover'); });
  ui.stage.addEventListener('dragleave', () => ui.stage.classList.remove('dragover'));
  ui.stage.addEventListener('drop', (event) => {
    event.preventDefault();
    ui.stage.classList.remove('dragover');
    readFile(event.dataTransfer.files[0]);
  });
  document.addEventListener('paste', (event) => {
    const item = [...(event.clipboardData ? event.clipboardData.items : [])].find((i) => i.type.startsWith('image/'));
    if (item) { event.preventDefault(); readFile(item.getAsFile()); }
  });

  // ------------------------------------------------------------------ tools
  ui.mode.addEventListener('click', () => {
    state.negative = !state.negative;
    ui.mode.setAttribute('aria-pressed', String(state.negative));
    ui.mode.textContent = state.negative ? '− Negative' : '+ Positive';
  });
  ui.newObject.addEventListener('click', () => send({ type: 'new_object' }));
  ui.undo.addEventListener('click', () => send({ type: 'undo', object_id: state.current }));
  ui.clear.addEventListener('click', () => send({ type: 'reset' }));
  ui.opacity.addEventListener('input', render);
  ui.confidence.addEventListener('input', () => { ui.confidenceValue.textContent = Number(ui.confidence.value).toFixed(2); });
  ui.textForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.text.value.trim();
    if (!text) return;
    if (send({ type: 'text', text, confidence_threshold: Number(ui.confidence.value) })) setStatus(`Finding “${text}”…`);
  });
  window.addEventListener('resize', render);

  // ------------------------------------------------------------------ downloads
  function allLayers() {
    const layers = []; // text instances first, so the objects' masks are drawn on top
    if (state.text) state.text.layers.forEach((layer, i) => layers.push({ layer, text: state.text.text, score: state.text.scores[i] }));
    for (const obj of state.objects.values()) if (obj.layer) layers.push({ layer: obj.layer, object_id: obj.id, score: obj.score });
    return layers;
  }

  function download(blob, name) {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

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

  // Say so when the server runs the random-weight development model: its masks are meant to look random.
  async function showModelNote() {
    try {
      const health = await (await fetch('/health')).json();
      if (health.trained_weights === false) {
        const note = document.getElementById('model-note');
        note.textContent = `Development model (${health.model}): random weights, masks are meaningless.`;
        note.hidden = false;
      }
    } catch (err) { /* the status line already reports connection problems */ }
  }

  showModelNote();
  connect();
  window.sam3App = { state, send }; // handy from the console and for tests
})();
