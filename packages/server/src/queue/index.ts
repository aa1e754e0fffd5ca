/** The one bounded queue between a push-fed source and a subscriber's generator (live queries, CRDT streams, presence). */
export { SubscriberQueue, type QueueBound } from "./subscriberQueue.ts";
