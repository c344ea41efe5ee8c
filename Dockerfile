FROM python:3.11-slim
WORKDIR /srv/app
COPY . .
RUN pip install --no-cache-dir -e .
EXPOSE 8000
