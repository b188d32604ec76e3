// The image mode's inputs: pointer (mouse, touch, pen: click = point, drag = box, right click = negative),
// loading an image (file, sample, URL, drop, paste) and the tool buttons.
import { render, toImage } from './draw.js';
import { loadImage, setStatus, state, ui } from './page.js';
import { connect, send } from './socket.js';

const DRAG_PX = 8; // CSS pixels a pointer must travel before a press becomes a box drag

export function wireInputs() {
  wirePointer();
  wireLoading();
  wireTools();
}

function wirePointer() {
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
}

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

function wireLoading() {
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
}

function wireTools() {
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
}
