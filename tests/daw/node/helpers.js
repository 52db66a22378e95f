// What the device suites share: starting a device against a fake set and answering as the service does.
"use strict";

const { loadDevice } = require("./fake_max.js");

function lastSent(probe, address) {
  const matching = probe.sent().filter((message) => message[0] === address);
  return matching[matching.length - 1];
}

function requestId(probe, address) {
  return lastSent(probe, address)[1];
}

// The service answers the device's keep-alive (/dd/hello <its reply port>) with its version.
function connect(probe, version) {
  probe.reply("/dd/hello", requestId(probe, "/dd/hello"), version || "0.1.0");
}

function start(set, options) {
  const probe = loadDevice(set, options);
  probe.message("init");
  connect(probe);
  return probe;
}

// The options of a request (key=value strings) as an object.
function options(message) {
  const found = {};
  for (const arg of message.slice(2)) {
    const match = typeof arg === "string" && /^([a-z_]+)=(.*)$/.exec(arg);
    if (match) {
      found[match[1]] = match[2];
    }
  }
  return found;
}

module.exports = { lastSent, requestId, connect, start, options };
