// The image mode's /ws/realtime session: connecting (and reconnecting), sending, and one handler per event.
import { apiKey } from '../common.js';
import { maskLayer, render } from './draw.js';
import { PALETTE, fmt, newObject, object, resetObjects, setStatus, state, ui } from './page.js';

export function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    setStatus('Not connected to the server yet; retrying…', 'error');
    return false;
  }
  state.ws.send(JSON.stringify(message));
  return true;
}

export function connect() {
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
