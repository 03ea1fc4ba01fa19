"""paho-mqtt (not written by us) through a presigned WebSocket URL the tests built: connect,
subscribe to a room, publish one message as itself, and report what it saw as JSON."""

import json
import sys
import threading
import time
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt


def main() -> None:
    url, client_id, room_filter, topic, payload = sys.argv[1:6]
    parts = urlsplit(url)
    seen = {"connect": None, "suback": None, "received": [], "puback": False}
    done = threading.Event()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, transport="websockets")
    client.ws_set_options(path=f"{parts.path}?{parts.query}")

    def on_connect(client, userdata, flags, reason_code, properties):
        seen["connect"] = str(reason_code)
        client.subscribe(room_filter, qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        seen["suback"] = [rc.value for rc in reason_codes]
        client.publish(topic, payload, qos=1)

    def on_publish(client, userdata, mid, reason_code, properties):
        seen["puback"] = True

    def on_message(client, userdata, message):
        seen["received"].append({"topic": message.topic, "payload": message.payload.decode()})
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    client.connect(parts.hostname, parts.port, keepalive=30)
    client.loop_start()
    done.wait(timeout=10)
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
