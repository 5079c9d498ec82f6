/**
 * A storage controller in a process of its own, for tests that must freeze it (SIGSTOP) while a request
 * is in flight: `node --import tsx storage-controller-child.ts <dir> <port>` prints "ready" once it
 * listens and stops on SIGTERM.
 */
import { StorageController } from '../../src/control/storage-controller.js'

const [dir, port] = process.argv.slice(2)
const sc = await StorageController.start(dir, {
  config: { listenHttpAddr: { host: '127.0.0.1', port: Number(port) }, logLevel: 'info' },
  log: () => {},
})
process.stdout.write('ready\n')
process.once('SIGTERM', () => void sc.stop().then(() => process.exit(0)))
