// Image mode / video mode of /app. Each mode has its own stage and canvas; the visible mode's canvas carries
// data-testid="canvas" (the drawing canvas), the hidden one a name of its own. /app#video opens in video mode.
(() => {
  'use strict';

  const modes = {
    image: { section: 'image-mode', canvas: 'canvas', status: 'status', tab: 'mode-image' },
    video: { section: 'video-mode', canvas: 'video-canvas', status: 'video-status', tab: 'mode-video' },
  };

  function show(name) {
    for (const [mode, parts] of Object.entries(modes)) {
      const active = mode === name;
      document.getElementById(parts.section).hidden = !active;
      document.getElementById(parts.status).hidden = !active;
      document.getElementById(parts.canvas).dataset.testid = active ? 'canvas' : `${mode}-canvas`;
      const tab = document.getElementById(parts.tab);
      tab.setAttribute('aria-selected', String(active));
      tab.classList.toggle('active', active);
    }
    document.body.dataset.mode = name;
    if (location.hash !== (name === 'video' ? '#video' : '') && history.replaceState) {
      history.replaceState(null, '', name === 'video' ? '#video' : location.pathname + location.search);
    }
    window.dispatchEvent(new CustomEvent('sam3:mode', { detail: name }));
  }

  document.getElementById('mode-image').addEventListener('click', () => show('image'));
  document.getElementById('mode-video').addEventListener('click', () => show('video'));
  show(location.hash === '#video' ? 'video' : 'image');
})();
