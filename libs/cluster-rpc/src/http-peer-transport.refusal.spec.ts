import { Logger } from '@nestjs/common';
import { EntryType, Message, MessageType } from '@app/consensus/core';
import { createServer, request, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { FRAME_HEADER, sealFrame } from './frame';
import { HttpPeerTransport } from './http-peer-transport';
import { testTransport } from './testing/test-transport';
import { encodeMessages } from './message-codec';
import { PEER_HEADERS, PEER_STREAM_CONTENT_TYPE, PEER_STREAM_PATH } from './peer-protocol';

/**
 * A member (or whoever holds its identity) that sends an ill-formed message: the receiving transport closes
 * the stream, logs it with the peer, and hands the core nothing from that frame on.
 */

const SENDER = 'http://127.0.0.1:1';
let server: Server;
let transport: HttpPeerTransport;
let self: string;
const received: Message[][] = [];

beforeEach(async () => {
  received.length = 0;
  server = createServer((req, res) => {
    const admitted = transport.admit(req.headers);
    if ('status' in admitted) {
      res.statusCode = admitted.status;
      res.end();
      return;
    }
    transport.serve(admitted.from, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  transport = testTransport({ nodeId: self, peers: { [SENDER]: SENDER } });
  transport.listen((messages) => received.push(messages));
});

afterEach(async () => {
  transport.onModuleDestroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  jest.restoreAllMocks();
});

const frame = (messages: Message[]) => sealFrame(encodeMessages(messages, FRAME_HEADER));

/** Opens a stream as SENDER, writes `body`, and resolves once the receiver has closed the stream. */
function stream(body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(`${self}${PEER_STREAM_PATH}`, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': PEER_STREAM_CONTENT_TYPE,
        'transfer-encoding': 'chunked',
        [PEER_HEADERS.from]: SENDER,
        [PEER_HEADERS.clusterId]: 'c1',
      },
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      res.resume();
      res.on('close', resolve);
    });
    // The receiver closing the stream may reset the request: that is the expected end.
    req.on('error', () => resolve());
    req.write(body);
  });
}

describe('HttpPeerTransport meeting an ill-formed message', () => {
  const heartbeat = (to: string): Message => ({
    type: MessageType.MsgHeartbeat,
    to,
    from: SENDER,
    term: 2,
    logTerm: 0,
    index: 0,
    commit: 0,
    reject: false,
    rejectHint: 0,
  });
  const entry = (index: number) => ({ term: 2, index, type: EntryType.Normal, data: Buffer.from('x') });

  it.each<[string, (to: string) => Message, RegExp]>([
    [
      'entries that skip an index',
      (to) => ({ ...heartbeat(to), type: MessageType.MsgApp, index: 4, logTerm: 2, entries: [entry(5), entry(7)] }),
      /entry 1 has index 7, expected 6/,
    ],
    ['a local message type', (to) => ({ ...heartbeat(to), type: MessageType.MsgHup }), /MsgHup never crosses the network/],
    ['an entry term above the message term', (to) => ({ ...heartbeat(to), type: MessageType.MsgApp, index: 4, entries: [{ ...entry(5), term: 3 }] }), /entry 0 has term 3/],
  ])('closes the stream on %s, logs it with the peer, and delivers nothing from that frame on', async (_name, bad, problem) => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const good = frame([heartbeat(self)]);
    await stream(Buffer.concat([good, frame([heartbeat(self), bad(self)]), good]));

    expect(received).toHaveLength(1);
    expect(received[0]).toEqual([heartbeat(self)]);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0][0])).toContain(`closing the stream from ${SENDER}: invalid message batch: message 1`);
    expect(String(errors.mock.calls[0][0])).toMatch(problem);
  });
});
