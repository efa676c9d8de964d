# python3 examples/openalgo_client.py [ws://127.0.0.1:8765] [API_KEY]   (pip install websockets)
import asyncio, json, sys, websockets

async def main(url=sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765", key=sys.argv[2] if len(sys.argv) > 2 else ""):
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"action": "authenticate", "api_key": key})); print(await ws.recv())
        await ws.send(json.dumps({"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": "Quote"})); print(await ws.recv())
        for _ in range(5):
            print(await ws.recv())

asyncio.run(main())
