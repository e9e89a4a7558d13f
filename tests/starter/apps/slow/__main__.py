from tests.starter.apps.slow import app

app.run()
