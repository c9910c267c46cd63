// serialgate browser console: one xterm.js terminal on a WebSocket to the server.
// The message format is in the webconsole crate's PROTOCOL.md.
'use strict';

(function () {
  // Message types: server to browser, then browser to server.
  const OUTPUT = 0x00, NOTICE = 0x01, STATUS = 0x02, END = 0x03;
  const INPUT = 0x00, RESIZE = 0x01, BREAK = 0x02, ACK = 0x03;

  const MAX_INPUT = 64 * 1024;        // bytes of input in one message
  const ACK_BYTES = 16 * 1024;        // ack at once when this much output is written...
  const ACK_DELAY_MS = 100;           // ...else this long after the first unacked write
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];
  const STABLE_MS = 10000;            // a connection this old starts the backoff afresh

  const $ = (id) => document.getElementById(id);
  const ui = {
    instance: $('instance'), port: $('port'), state: $('state'), timeLeft: $('time-left'),
    notice: $('notice'), sysrq: $('sysrq'), breakButton: $('break'),
    disconnect: $('disconnect'), terminal: $('terminal'), overlay: $('overlay'),
    overlayTitle: $('overlay-title'), overlayText: $('overlay-text'), reconnect: $('reconnect'),
  };

  // /console/<instance>/<port>
  const parts = location.pathname.split('/');
  const instance = parts[2] || '';
  const port = parts[3] || '';
  ui.instance.textContent = instance;
  ui.port.textContent = port;
  document.title = instance + ' port ' + port + ' — serial console';

  const term = new Terminal({
    cursorBlink: true,
    scrollback: 10000,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    theme: { background: '#101214' },   // the page's background, so the padding blends in
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(ui.terminal);
  fit.fit();
  term.focus();

  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  let ws = null;
  let generation = 0;      // output callbacks from an older connection must not ack on this one
  let ended = false;       // the server ended the session or the user left: no reconnecting
  let attempt = 0;
  let openedAt = 0;
  let retryTimer = null;
  let endsAt = null;       // unix ms, from the status message
  let unacked = 0;
  let ackTimer = null;

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    drop('reconnecting');
    const gen = ++generation;
    unacked = 0;
    clearTimeout(ackTimer);
    ackTimer = null;
    setState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(scheme + '//' + location.host + location.pathname + '/ws');
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      openedAt = Date.now();
      setState('connected');
      sendResize();
    };
    ws.onmessage = (event) => receive(event.data, gen);
    ws.onclose = (event) => closed(event, gen);
  }

  // Forgets the current connection: its late messages and its close are ignored.
  function drop(reason) {
    generation++;
    if (ws) ws.close(1000, reason);
    ws = null;
  }

  function receive(data, gen) {
    if (gen !== generation || !(data instanceof ArrayBuffer) || data.byteLength === 0) return;
    const bytes = new Uint8Array(data);
    const payload = bytes.subarray(1);
    switch (bytes[0]) {
      case OUTPUT:
        term.write(payload, () => written(payload.length, gen));
        break;
      case NOTICE: {
        const text = decoder.decode(payload);
        term.write(text);
        const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
        if (lines.length) ui.notice.textContent = lines[lines.length - 1];
        ui.notice.title = ui.notice.textContent;
        break;
      }
      case STATUS:
        try {
          const status = JSON.parse(decoder.decode(payload));
          if (typeof status.ends_at_ms === 'number') endsAt = status.ends_at_ms;
          if (status.principal) ui.instance.title = 'as ' + status.principal;
          tick();
        } catch (e) {
          console.warn('bad status message', e);
        }
        break;
      case END:
        ended = true;
        setState('ended');
        showOverlay('Session ended', decoder.decode(payload));
        break;
    }
  }

  function closed(event, gen) {
    if (gen !== generation) return;
    ws = null;
    if (ended) {
      setState('ended');
      return;
    }
    if (event.code >= 4000 && event.code <= 4999) {
      ended = true;
      setState('ended');
      showOverlay('Session ended', event.reason || 'The server closed the session (code ' + event.code + ').');
      return;
    }
    // A dropped network or a restarted server: try again, more slowly each time.
    if (openedAt && Date.now() - openedAt >= STABLE_MS) attempt = 0;
    openedAt = 0;
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt++;
    setState('reconnecting in ' + Math.round(delay / 1000) + ' s');
    retryTimer = setTimeout(connect, delay);
  }

  function send(type, payload) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const msg = new Uint8Array(1 + (payload ? payload.length : 0));
    msg[0] = type;
    if (payload) msg.set(payload, 1);
    ws.send(msg);
  }

  function sendInput(bytes) {
    for (let at = 0; at < bytes.length; at += MAX_INPUT) {
      send(INPUT, bytes.subarray(at, at + MAX_INPUT));
    }
  }

  function sendResize() {
    const size = new Uint8Array(4);
    const view = new DataView(size.buffer);
    view.setUint16(0, term.cols);
    view.setUint16(2, term.rows);
    send(RESIZE, size);
  }

  // Acks let the server keep only a window of output in flight; they count what xterm has
  // finished writing, batched so that a flood does not answer every message.
  function written(count, gen) {
    if (gen !== generation) return;
    unacked += count;
    if (unacked >= ACK_BYTES) {
      sendAck();
    } else if (ackTimer === null) {
      ackTimer = setTimeout(sendAck, ACK_DELAY_MS);
    }
  }

  function sendAck() {
    clearTimeout(ackTimer);
    ackTimer = null;
    if (unacked === 0) return;
    const count = new Uint8Array(4);
    new DataView(count.buffer).setUint32(0, unacked);
    unacked = 0;
    send(ACK, count);
  }

  function setState(text) {
    ui.state.textContent = text;
    if (text === 'ended' || text === 'disconnected') {
      endsAt = null;
      ui.timeLeft.textContent = '';
    }
    ui.state.className = 'state' + (text === 'connected' ? ' connected' : text === 'ended' ? ' ended' : '');
    ui.breakButton.disabled = text !== 'connected';
    ui.disconnect.disabled = text === 'ended' || text === 'disconnected';
  }

  function tick() {
    if (endsAt === null) return;
    const left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
    const h = Math.floor(left / 3600), m = Math.floor(left / 60) % 60, s = left % 60;
    const pad = (n) => String(n).padStart(2, '0');
    ui.timeLeft.textContent = (h ? h + ':' + pad(m) : m) + ':' + pad(s) + ' left';
    ui.timeLeft.classList.toggle('low', left < 300);
  }

  function showOverlay(title, text) {
    ui.overlayTitle.textContent = title;
    ui.overlayText.textContent = text;
    ui.overlay.hidden = false;
    ui.reconnect.focus();
  }

  term.onData((data) => sendInput(encoder.encode(data)));
  term.onBinary((data) => sendInput(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
  term.onResize(sendResize);
  // The page's own keys: xterm.js takes Tab, so this is the way out of the terminal.
  term.attachCustomKeyEventHandler((event) => {
    if (event.type === 'keydown' && event.ctrlKey && !event.altKey && !event.metaKey &&
        (event.key === ']' || event.code === 'BracketRight')) {
      ui.sysrq.focus();
      return false;
    }
    return true;
  });

  // The terminal's box changes with the window and with the bar's height.
  let fitPending = false;
  new ResizeObserver(() => {
    if (fitPending) return;
    fitPending = true;
    requestAnimationFrame(() => {
      fitPending = false;
      fit.fit();
    });
  }).observe(ui.terminal);

  ui.breakButton.addEventListener('click', () => {
    const letter = ui.sysrq.value;
    send(BREAK, letter ? encoder.encode(letter) : null);
    term.focus();
  });

  ui.disconnect.addEventListener('click', () => {
    ended = true;
    clearTimeout(retryTimer);
    drop('disconnected by the user');
    setState('disconnected');
    showOverlay('Disconnected', 'You closed the connection to the serial console.');
  });

  ui.reconnect.addEventListener('click', () => {
    ended = false;
    attempt = 0;
    ui.overlay.hidden = true;
    connect();
    term.focus();
  });

  setInterval(tick, 1000);
  connect();
})();
