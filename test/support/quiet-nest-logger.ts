/**
 * Unit specs drive error paths on purpose (a refused stream, an entry that is not a KV command), and Nest's
 * default logger would print each line among the results. Its static output is switched off here; a spec
 * that checks a log line spies on the logger's methods or gives the module a logger of its own, which still
 * see every call.
 */
import { Logger } from '@nestjs/common';

Logger.overrideLogger(false);
